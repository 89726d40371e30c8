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
        let (sql, rawBinds) = serialize(query)
        logger.trace("sqlite statement", metadata: ["sql": .string(sql)])
        let binds = try rawBinds.map { try Self.encoder.encode($0) }
        let decoder = Self.decoder
        switch target {
        case .readers(let pool):
            try pool.withConnection { try $0.run(sql, binds: binds) { onRow(SQLiteSQLRow(row: $0, decoder: decoder)) } }
        case .connection(let connection):
            try connection.run(sql, binds: binds) { onRow(SQLiteSQLRow(row: $0, decoder: decoder)) }
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
        return try decoder.decode(D.self, from: value)
    }
}
