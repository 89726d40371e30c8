import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO

/// The stores' `SQLDatabase` over ``CachedSQLiteConnection``: sql-kit serializes a query, the
/// statement runs at once on the calling thread (no thread pool, no future), on a connection
/// from the reader pool or on one connection (the writer, inside a transaction).
struct SQLiteSQLDatabase: SQLDatabase {
    enum Target: Sendable {
        /// Each statement on an idle reader, autocommit: no transaction around a read.
        case readers(SQLiteReaderPool)
        /// Every statement on this connection.
        case connection(CachedSQLiteConnection)
    }

    // One of each for every statement: `SQLiteDataEncoder()` would build a JSON coder per call.
    private static let encoder = SQLiteDataEncoder()
    private static let decoder = SQLiteDataDecoder()

    let target: Target
    let logger: Logger
    /// Only for sql-kit's future-based API; statements never run on it.
    let eventLoop: any EventLoop

    /// Every statement on `connection` (tests and tools; the database builds its own).
    static func on(_ connection: CachedSQLiteConnection, logger: Logger) -> SQLiteSQLDatabase {
        SQLiteSQLDatabase(target: .connection(connection), logger: logger, eventLoop: MultiThreadedEventLoopGroup.singleton.any())
    }

    var dialect: any SQLDialect { SQLiteDialect() }
    /// Statements are logged by ``run(_:_:)`` at trace level, without their bound values.
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        do {
            try run(query, onRow)
            return eventLoop.makeSucceededVoidFuture()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try run(query, onRow)
    }

    private func run(_ query: any SQLExpression, _ onRow: (any SQLRow) -> Void) throws {
        let sql: String
        let rawBinds: [any Encodable & Sendable]
        if let statement = query as? BoundSQL {
            // Written for SQLite's placeholders already: nothing to serialize.
            (sql, rawBinds) = (statement.text, statement.binds)
        } else {
            (sql, rawBinds) = serialize(query)
        }
        try each(sql, try rawBinds.map(Self.bind), onRow)
    }

    /// Runs `sql` with `binds` on the target, handing each row to `onRow` as it is read.
    private func each(_ sql: String, _ binds: [SQLiteData], _ onRow: (any SQLRow) -> Void) throws {
        logger.trace("sqlite statement", metadata: ["sql": .string(sql)])
        let decoder = Self.decoder
        switch target {
        case .readers(let pool):
            try pool.withConnection { try $0.run(sql, binds: binds) { onRow(SQLiteSQLRow(row: $0, decoder: decoder)) } }
        case .connection(let connection):
            try connection.run(sql, binds: binds) { onRow(SQLiteSQLRow(row: $0, decoder: decoder)) }
        }
    }
}

extension SQLiteSQLDatabase {
    /// The rows of one statement with `?` placeholders (``PreparedText``'s on SQLite), bound
    /// in order: straight to the connection, without an expression, a query object or
    /// sql-kit's collection of the rows around it.
    func rows(_ sql: String, _ binds: [SQLiteData]) throws -> [any SQLRow] {
        var rows: [any SQLRow] = []
        try each(sql, binds) { rows.append($0) }
        return rows
    }

    /// A bound value as SQLiteKit's encoder makes it; the stores' common types without its
    /// search for a conformance per value (a visible share of a command's CPU).
    static func bind(_ value: any Encodable & Sendable) throws -> SQLiteData {
        switch value {
        case let text as String: return .text(text)
        case let number as Int64: return .integer(Int(number))
        case let number as Int: return .integer(number)
        case let number as Double: return .float(number)
        case let flag as Bool: return .integer(flag ? 1 : 0)
        // Nullable columns (an expiry, a removal time) bind an Optional: nil is NULL.
        case let number as Int64?: return number.map { .integer(Int($0)) } ?? .null
        case let text as String?: return text.map(SQLiteData.text) ?? .null
        default: return try encoder.encode(value)
        }
    }
}

/// A result row as sql-kit reads it, decoded as SQLiteKit decodes its own rows.
struct SQLiteSQLRow: SQLRow {
    let row: SQLiteResultRow
    let decoder: SQLiteDataDecoder

    var allColumns: [String] { row.columns.names }

    func contains(column: String) -> Bool { row.columns.index(of: column) != nil }

    func decodeNil(column: String) throws -> Bool {
        guard let value = row[column] else { return true }
        return value == .null
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let value = row[column] else { throw SQLiteFailure(code: 0, message: "no column named \(column) in the result") }
        // The stores' common types as SQLiteKit's decoder reads them, without its search for a
        // conformance per value; anything else through it.
        switch value {
        case .text(let text) where D.self == String.self: return text as! D
        case .integer(let number) where D.self == Int64.self: return Int64(number) as! D
        case .integer(let number) where D.self == Int.self: return number as! D
        case .float(let number) where D.self == Double.self: return number as! D
        case .integer(let number) where D.self == Double.self: return Double(number) as! D
        // Nullable columns read as Optionals (a removal time, an expiry).
        case .null where D.self == Int64?.self: return Int64?.none as! D
        case .integer(let number) where D.self == Int64?.self: return Int64?.some(Int64(number)) as! D
        case .null where D.self == String?.self: return String?.none as! D
        case .text(let text) where D.self == String?.self: return String?.some(text) as! D
        default: return try decoder.decode(D.self, from: value)
        }
    }
}
