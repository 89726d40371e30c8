import Foundation
import Logging
import MercatoCore
import MercatoStorage
import SQLKit

/// The test PostgreSQL server as every test of a process shares it: one admin connection pool,
/// one database migrated once and copied for each test (`CREATE DATABASE ... TEMPLATE`), and a
/// bound on how many databases are created or dropped at once.
///
/// All suites start together, so without the bound some hundred tests would open admin
/// connections and run all migrations at the same moment: on a loaded two-core machine that
/// took longer than the storage deadlines the tests were measuring (connections not leased
/// within 5 s, group commits not answered within 15 s) and came close to `max_connections`.
public actor PostgresTestServer {
    public static let shared = PostgresTestServer()

    /// Creations and drops running at once.
    private let limit = 3
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var admin: Task<Database, any Error>?
    private var template: Task<String, any Error>?

    /// A new database: a copy of the migrated template, or empty when `migrated` is false.
    /// Answers its name.
    public func createDatabase(admin url: String, migrated: Bool) async throws -> String {
        let templateName = migrated ? try await migratedTemplate(admin: url) : nil
        let admin = try await adminDatabase(url)
        let name = TestDatabase.newName()
        let statement = templateName.map { "CREATE DATABASE \(name) TEMPLATE \($0)" } ?? "CREATE DATABASE \(name)"
        try await bounded {
            try await admin.read { try await $0.raw(SQLQueryString(statement)).run() }
        }
        return name
    }

    /// Drops a test database, closing what is still connected to it.
    public func dropDatabase(admin url: String, name: String) async {
        guard let admin = try? await adminDatabase(url) else { return }
        let statement = "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"
        try? await bounded {
            try await admin.read { try await $0.raw(SQLQueryString(statement)).run() }
        }
    }

    /// The admin pool, opened once. Its deadlines are generous: it serves test setup, not the
    /// behaviour under test.
    private func adminDatabase(_ url: String) async throws -> Database {
        if let admin { return try await admin.value }
        let task = Task {
            try await Database.open(.postgres(url: url), logger: TestDatabase.logger, poolSize: limit,
                                    deadlines: StorageDeadlines(lease: .seconds(60), statement: .seconds(120)))
        }
        admin = task
        return try await task.value
    }

    /// The migrated template, made on first use (a failure is not kept: the next test tries again).
    private func migratedTemplate(admin url: String) async throws -> String {
        if let template { return try await template.value }
        let task = Task {
            let admin = try await self.adminDatabase(url)
            let name = TestDatabase.newName() + "_template"
            let create = "CREATE DATABASE \(name)"
            try await admin.read { try await $0.raw(SQLQueryString(create)).run() }
            let database = try await Database.open(.postgres(url: TestDatabase.replacingDatabase(in: url, with: name)),
                                                   logger: TestDatabase.logger, poolSize: 1,
                                                   deadlines: StorageDeadlines(lease: .seconds(60), statement: .seconds(120)))
            do {
                try await Schema.runner.migrate(database, logger: TestDatabase.logger)
            } catch {
                await database.close()
                throw error
            }
            await database.close()
            return name
        }
        template = task
        do {
            return try await task.value
        } catch {
            template = nil
            throw error
        }
    }

    private func bounded<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        await acquire()
        do {
            let result = try await body()
            release()
            return result
        } catch {
            release()
            throw error
        }
    }

    private func acquire() async {
        if running < limit {
            running += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the slot to the next waiter, if any.
    private func release() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
