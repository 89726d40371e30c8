public import Logging
public import NIOCore
public import PostgresNIO
import PostgresKit
public import SQLKit

/// A PostgreSQL connection as sql-kit's `SQLDatabase` (what PostgresKit's `sql()` gives), that
/// still hands out the connection itself: a store given one can run a named prepared statement
/// (``PostgresPreparedStatement``) on its hot path, in the caller's transaction, and sql-kit
/// for the rest. Every `SQLDatabase` that ``Database`` lends on PostgreSQL is one.
public struct PostgresConnectionSQL: SQLDatabase {
    public let connection: PostgresConnection
    private let base: any SQLDatabase

    init(_ connection: PostgresConnection) {
        self.connection = connection
        self.base = connection.sql()
    }

    public var logger: Logger { base.logger }
    public var eventLoop: any EventLoop { base.eventLoop }
    public var version: (any SQLDatabaseReportedVersion)? { base.version }
    public var dialect: any SQLDialect { base.dialect }
    public var queryLogLevel: Logger.Level? { base.queryLogLevel }

    public func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        base.execute(sql: query, onRow)
    }

    public func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await base.execute(sql: query, onRow)
    }

    public func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}
