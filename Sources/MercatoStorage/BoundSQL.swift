import SQLKit

/// A statement written out with `?` where each bound value goes, and its values in order: the
/// hot paths' statements. On SQLite the text and values go to the connection as they are (its
/// prepared statement is found by the text), without sql-kit building and serializing an
/// expression per call (a few percent of a command's CPU); on PostgreSQL sql-kit writes each
/// `?` as the dialect's placeholder. The text holds no other `?` (none in its literals).
struct BoundSQL: SQLExpression {
    let text: String
    let binds: [any Encodable & Sendable]

    init(_ text: String, _ binds: [any Encodable & Sendable] = []) {
        self.text = text
        self.binds = binds
    }

    func serialize(to serializer: inout SQLSerializer) {
        var next = binds.startIndex
        var piece = text.startIndex
        while let mark = text[piece...].firstIndex(of: "?") {
            serializer.write(String(text[piece ..< mark]))
            serializer.write(bind: binds[next])
            next += 1
            piece = text.index(after: mark)
        }
        serializer.write(String(text[piece...]))
    }
}

/// A ``BoundSQL`` on a database, read as sql-kit's raw queries are (`run`, `first`, `all`).
final class BoundQuery: SQLQueryFetcher {
    let query: any SQLExpression
    let database: any SQLDatabase

    init(_ statement: BoundSQL, on database: any SQLDatabase) {
        self.query = statement
        self.database = database
    }
}

extension SQLDatabase {
    /// `text` with its `?`s bound to `binds` in order (``BoundSQL``).
    func bound(_ text: String, _ binds: [any Encodable & Sendable] = []) -> BoundQuery {
        BoundQuery(BoundSQL(text, binds), on: self)
    }
}
