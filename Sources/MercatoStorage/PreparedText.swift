import PostgresKit
import PostgresNIO
import SQLKit

/// A hot path's statement, written once with `?` where each value goes (as ``BoundSQL``): on
/// PostgreSQL a named prepared statement (parsed once per connection and kept at its generic
/// plan, where the same text sent unnamed is parsed and planned at every call), on SQLite the
/// connection's cached statement for the text. Each statement is a type of its own (an enum with the
/// text), since PostgresNIO names a prepared statement by its type. Every
/// `PostgresPreparedStatement` of the stores says its `name` itself: PostgresNIO's default,
/// `String(reflecting:)` of the type, is built again at every execution (0.7% of a `kv.set`'s
/// CPU on PostgreSQL).
protocol PreparedText {
    /// The statement with `?` placeholders.
    static var text: String { get }
    /// The name PostgreSQL keeps the statement under on each connection.
    static var name: String { get }
    /// `text` with its `?`s numbered for PostgreSQL (``numbered(_:)``, kept in a `static let`:
    /// PostgresNIO reads it at every call).
    static var postgres: String { get }
}

extension PreparedText {
    /// `text` with each `?` written `$1`, `$2`, … in order.
    static func numbered(_ text: String) -> String {
        var n = 0
        return text.split(separator: "?", omittingEmptySubsequences: false).reduce(into: "") { sql, piece in
            if n > 0 { sql += "$\(n)" }
            sql += piece
            n += 1
        }
    }
}

/// A value a ``PreparedText`` binds: one both engines' bindings take (text, integers).
protocol PreparedValue: PostgresEncodable, Encodable, Sendable {}
extension String: PreparedValue {}
extension Int: PreparedValue {}
extension Int64: PreparedValue {}

/// ``PreparedText`` as PostgresNIO runs it: `?` numbered `$1`, `$2`, … once, rows as they come.
struct PreparedTextStatement<Text: PreparedText>: PostgresPreparedStatement {
    static var name: String { Text.name }
    static var sql: String { Text.postgres }

    typealias Row = PostgresRow
    let values: [any PreparedValue]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { try bindings.append(value) }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension SQLDatabase {
    /// The rows of `Text` with `values` bound in order (``PreparedText``).
    func prepared<Text: PreparedText>(_ text: Text.Type, _ values: [any PreparedValue]) async throws -> [any SQLRow] {
        if let lite = self as? SQLiteSQLDatabase { return try lite.rows(Text.text, values.map { try SQLiteSQLDatabase.bind($0) }) }
        guard let pg = self as? PostgresConnectionSQL else { return try await bound(Text.text, values.map { $0 as any Encodable & Sendable }).all() }
        var rows: [any SQLRow] = []
        for try await row in try await pg.connection.execute(PreparedTextStatement<Text>(values: values), logger: pg.logger) {
            rows.append(row.sql())
        }
        return rows
    }
}
