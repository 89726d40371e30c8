import Foundation
public import Logging
public import MercatoCore
public import MercatoHooks
import MercatoCrypto
public import MercatoStorage
import SQLKit

/// The engines every storage test runs on. PostgreSQL needs `MERCATO_TEST_POSTGRES_URL` (an
/// admin URL; `scripts/test` starts a throwaway server and sets it). Without it the PostgreSQL
/// cases fail with that message instead of silently passing.
public enum TestEngines {
    public static let all: [StorageEngine] = StorageEngine.allCases

    public static var postgresAdminURL: String? {
        ProcessInfo.processInfo.environment["MERCATO_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// A migrated, empty database for one test: a temporary SQLite file, or a new PostgreSQL
/// database created on the test server and dropped afterwards.
public struct TestDatabase: Sendable {
    public let database: Database
    public let location: DatabaseLocation
    let cleanup: @Sendable () async -> Void

    public static let logger: Logger = {
        var logger = Logger(label: "mercato.test")
        logger.logLevel = .warning
        return logger
    }()

    public static func make(_ engine: StorageEngine, migrate: Bool = true) async throws -> TestDatabase {
        let location: DatabaseLocation
        let cleanup: @Sendable () async -> Void
        switch engine {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mercato-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            location = .sqlite(path: dir.appendingPathComponent("test.sqlite").path)
            cleanup = { try? FileManager.default.removeItem(at: dir) }
        case .postgres:
            guard let admin = TestEngines.postgresAdminURL else {
                throw StorageError("MERCATO_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL for the tests")
            }
            let server = PostgresTestServer.shared
            let name = try await server.createDatabase(admin: admin, migrated: migrate)
            location = .postgres(url: Self.replacingDatabase(in: admin, with: name))
            cleanup = { await server.dropDatabase(admin: admin, name: name) }
            let database: Database
            do {
                database = try await open(location)
            } catch {
                await cleanup()
                throw error
            }
            return TestDatabase(database: database, location: location, cleanup: cleanup)
        }
        let database = try await open(location)
        if migrate { try await Schema.runner.migrate(database, logger: logger) }
        return TestDatabase(database: database, location: location, cleanup: cleanup)
    }

    /// The deadlines of the tests' databases: generous, because all suites run at once on a
    /// machine that may be loaded, and the deadlines are not what they test (DatabaseTests opens
    /// its own database with short ones where they are).
    public static let deadlines = StorageDeadlines(lease: .seconds(30), statement: .seconds(60))

    /// Another connection pool on a test database (another node).
    public static func open(_ location: DatabaseLocation, logger: Logger = TestDatabase.logger) async throws -> Database {
        try await Database.open(location, logger: logger, deadlines: deadlines)
    }

    static func newName() -> String {
        "mercato_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
    }

    /// Closes the connections and removes the file or database.
    public func destroy() async {
        await database.close()
        await cleanup()
    }

    static func replacingDatabase(in url: String, with name: String) -> String {
        var components = URLComponents(string: url)!
        components.path = "/" + name
        return components.string!
    }
}

/// Runs `body` with a fresh database on `engine`, always cleaning up.
public func withTestDatabase<R>(_ engine: StorageEngine, migrate: Bool = true, _ body: (TestDatabase) async throws -> R) async throws -> R {
    let db = try await TestDatabase.make(engine, migrate: migrate)
    do {
        let result = try await body(db)
        await db.destroy()
        return result
    } catch {
        await db.destroy()
        throw error
    }
}

/// A runtime on a fresh database with a fresh keyring file, for service and HTTP tests.
public func withTestRuntime<R>(_ engine: StorageEngine, operatorToken: String? = nil, clock: WallClock = .system,
                               plugins: [any MercatoPlugin] = TestPlugins.all, commandTimeout: Duration = .seconds(10),
                               logger: Logger = TestDatabase.logger, environment extra: [String: String] = [:],
                               deadlines: StorageDeadlines? = nil, _ body: (MercatoRuntime) async throws -> R) async throws -> R {
    try await withTestDatabase(engine) { db in
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mercato-keys-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var environment = extra.merging(["MERCATO_DATA_DIR": dir.path]) { _, fixed in fixed }
        if let operatorToken { environment["MERCATO_OPERATOR_TOKEN"] = operatorToken }
        let settings = try Settings(environment: environment)
        let vault = try KeyringSource(settings: settings).makeVault()
        // Deadlines of its own (a test of them): the runtime gets its own pool on the database.
        var own: Database?
        if let deadlines { own = try await Database.open(db.location, logger: logger, deadlines: deadlines) }
        do {
            let runtime = try MercatoRuntime(settings: settings, database: own ?? db.database, vault: vault, plugins: plugins,
                                             clock: clock, commandTimeout: commandTimeout, logger: logger)
            let result = try await body(runtime)
            await own?.close()
            return result
        } catch {
            await own?.close()
            throw error
        }
    }
}

/// `count` runtimes over one fresh database, each with its own connections and the same keyring:
/// several nodes of one deployment, for tests of what must hold across nodes (CONTRACT §12).
public func withTestNodes<R>(_ engine: StorageEngine, count: Int, operatorToken: String? = nil, plugins: [any MercatoPlugin] = TestPlugins.all,
                             commandTimeout: Duration = .seconds(10), logger: Logger = TestDatabase.logger,
                             _ body: ([MercatoRuntime]) async throws -> R) async throws -> R {
    try await withTestDatabase(engine) { db in
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mercato-keys-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var environment = ["MERCATO_DATA_DIR": dir.path]
        if let operatorToken { environment["MERCATO_OPERATOR_TOKEN"] = operatorToken }
        let settings = try Settings(environment: environment)
        var runtimes = [try MercatoRuntime(settings: settings, database: db.database, vault: try KeyringSource(settings: settings).makeVault(),
                                           plugins: plugins, commandTimeout: commandTimeout, logger: logger)]
        var others: [Database] = []
        func closeOthers() async { for database in others { await database.close() } }
        do {
            for _ in 1 ..< count {
                let database = try await TestDatabase.open(db.location, logger: logger)
                others.append(database)
                runtimes.append(try MercatoRuntime(settings: settings, database: database, vault: try KeyringSource(settings: settings).makeVault(),
                                                   plugins: plugins, commandTimeout: commandTimeout, logger: logger))
            }
            let result = try await body(runtimes)
            await closeOthers()
            return result
        } catch {
            await closeOthers()
            throw error
        }
    }
}
