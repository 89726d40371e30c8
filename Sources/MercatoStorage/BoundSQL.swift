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
/// On SQLite those three go straight to the connection (``SQLiteSQLDatabase/rows(_:_:)``),
/// without sql-kit's collection of the rows.
final class BoundQuery: SQLQueryFetcher {
    let statement: BoundSQL
    let database: any SQLDatabase
    var query: any SQLExpression { statement }

    init(_ statement: BoundSQL, on database: any SQLDatabase) {
        self.statement = statement
        self.database = database
    }

    func all() async throws -> [any SQLRow] {
        if let lite = database as? SQLiteSQLDatabase {
            return try lite.rows(statement.text, statement.binds.map(SQLiteSQLDatabase.bind))
        }
        return try await (self as any SQLQueryFetcher).all()
    }

    func first() async throws -> (any SQLRow)? {
        if database is SQLiteSQLDatabase { return try await all().first }
        return try await (self as any SQLQueryFetcher).first()
    }

    /// (A requirement of `SQLQueryBuilder`, so its default cannot be called from here.)
    func run() async throws {
        if database is SQLiteSQLDatabase { _ = try await all(); return }
        try await database.execute(sql: query) { _ in }
    }
}

extension SQLDatabase {
    /// `text` with its `?`s bound to `binds` in order (``BoundSQL``).
    func bound(_ text: String, _ binds: [any Encodable & Sendable] = []) -> BoundQuery {
        BoundQuery(BoundSQL(text, binds), on: self)
    }
}
