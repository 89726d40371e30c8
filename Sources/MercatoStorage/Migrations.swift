public import Logging
import SQLKit

/// One step of the schema, written once per engine where the dialects differ.
public struct Migration: Sendable {
    /// Position in the order; never reused, never changed once shipped.
    public let id: Int
    public let name: String
    /// The statements, given the engine (types such as `BYTEA`/`BLOB` differ).
    public let statements: @Sendable (StorageEngine) -> [String]

    public init(id: Int, name: String, statements: @escaping @Sendable (StorageEngine) -> [String]) {
        self.id = id
        self.name = name
        self.statements = statements
    }
}

/// Applies pending migrations in order, each in its own transaction, and records them in
/// `_migrations`. Safe to run again (already applied steps are skipped) and from several
/// nodes at once (PostgreSQL: an advisory transaction lock; SQLite: the writer lock).
public struct MigrationRunner: Sendable {
    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        precondition(Set(migrations.map(\.id)).count == migrations.count, "migration ids must be unique")
        self.migrations = migrations.sorted { $0.id < $1.id }
    }

    /// The highest id this build knows.
    public var latest: Int { migrations.last?.id ?? 0 }

    /// Applies what is missing; answers the ids it applied.
    @discardableResult
    public func migrate(_ database: Database, logger: Logger) async throws -> [Int] {
        try await database.longTransaction { db in
            // Two nodes creating the table at once can collide in PostgreSQL's catalog even with
            // IF NOT EXISTS; the same lock as the steps serialises them.
            if database.engine == .postgres { try await db.raw("SELECT pg_advisory_xact_lock(7461273)").run() }
            try await db.raw("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)").run()
        }
        var applied: [Int] = []
        for migration in migrations {
            let didApply = try await database.longTransaction { db -> Bool in
                if database.engine == .postgres {
                    // Serialise concurrent migrators across nodes; released at commit.
                    try await db.raw("SELECT pg_advisory_xact_lock(7461273)").run()
                }
                let done = try await db.raw("SELECT id FROM _migrations WHERE id = \(bind: migration.id)").first()
                if done != nil { return false }
                for statement in migration.statements(database.engine) {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw("INSERT INTO _migrations (id, name, applied_at) VALUES (\(bind: migration.id), \(bind: migration.name), \(bind: Timestamp.nowMillis()))").run()
                return true
            }
            if didApply {
                logger.info("applied migration", metadata: ["migration": "\(migration.id) \(migration.name)"])
                applied.append(migration.id)
            }
        }
        return applied
    }

    /// `true` when every known migration is applied (each id, not just the highest: a step
    /// numbered below one already applied, merged later, still counts as missing).
    public func isCurrent(_ database: Database) async throws -> Bool {
        let applied = try await database.read { db in
            try await db.raw("SELECT id FROM _migrations").all().map { try $0.decode(column: "id", as: Int.self) }
        }
        return Set(migrations.map(\.id)).isSubset(of: Set(applied))
    }
}
