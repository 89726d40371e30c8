import Foundation
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// Plugin keys are indexed by org only for the plugins whose manifest declares `orgWideReads`:
/// the others' keys (kv, an inbound event's hash) cost no page in the org index.
@Suite("Plugin keys in the org index: only for plugins that read across an org")
struct OrgIndexTests {
    /// The org each stored key of `plugin` carries (nil: not in the org index), by key.
    static func orgs(of plugin: String, on database: Database) async throws -> [String: String?] {
        try await database.read { db in
            try await db.raw("SELECT key, org_id FROM plugin_kv WHERE plugin_id = \(bind: plugin)").all()
        }.reduce(into: [:]) { $0[try $1.decode(column: "key", as: String.self)] = try $1.decode(column: "org_id", as: String?.self) }
    }

    /// An app on a fresh server, an org and one install of it.
    static func withInstall(_ engine: StorageEngine, _ body: @escaping @Sendable (_ database: Database, _ org: String, _ installID: String) async throws -> Void) async throws {
        try await withApp(engine) { app in
            let f = try await app.installFixture()
            let installID = try #require(try await app.install("acme-crm", token: f.owner).json["id"] as? String)
            try await body(app.runtime.database, f.org, installID)
        }
    }

    @Test(arguments: TestEngines.all)
    func onlyDeclaringPluginsIndexTheirKeysByOrg(engine: StorageEngine) async throws {
        try await Self.withInstall(engine) { database, org, installID in
            let provider = HostStorageProvider(database: database, clock: .system, orgWideReads: ["audit"])

            _ = try await provider.storage(plugin: "kv", install: installID, org: org).set("plain", .string("v"))
            _ = try await provider.orgStorage(plugin: "kv", org: org).own.set("plain-own", .string("v"))
            _ = try await provider.storage(plugin: "audit", install: installID, org: org).set("entry_1", .string("a"))
            _ = try await provider.orgStorage(plugin: "audit", org: org).own.set("entry_2", .string("b"))

            #expect(try await Self.orgs(of: "kv", on: database) == ["plain": nil, "plain-own": nil])
            #expect(try await Self.orgs(of: "audit", on: database) == ["entry_1": org, "entry_2": org])

            let audit = provider.orgStorage(plugin: "audit", org: org)
            #expect(try await audit.entries(prefix: "entry_", after: nil, limit: 10, newestFirst: false).map(\.installID) == [installID, nil])
            #expect(try await audit.find("entry_2")?.value.value == .string("b"))

            // A plugin that did not declare it cannot read across the org (its keys are not there).
            let kv = provider.orgStorage(plugin: "kv", org: org)
            await #expect(throws: OrgWideReadsNotDeclared.self) { _ = try await kv.entries(prefix: "", after: nil, limit: 10, newestFirst: false) }
            await #expect(throws: OrgWideReadsNotDeclared.self) { _ = try await kv.find("plain") }
            // Its own namespaces still read and write as before.
            #expect(try await kv.own.get("plain-own")?.value == .string("v"))

            // The org-wide read uses the (partial) org index.
            let plan = try await database.transaction { db -> String in
                let query: SQLQueryString = """
                    SELECT install_id, key, value, version FROM plugin_kv
                    WHERE plugin_id = \(bind: "audit") AND org_id = \(bind: org) AND key LIKE \(bind: "entry_%") ESCAPE '\\'
                    ORDER BY key DESC LIMIT \(bind: 10)
                    """
                if engine == .sqlite {
                    return try await db.raw("EXPLAIN QUERY PLAN " + query).all().map { try $0.decode(column: "detail", as: String.self) }.joined(separator: "\n")
                }
                try await db.raw("SET LOCAL enable_seqscan = off").run()
                return try await db.raw("EXPLAIN " + query).all().map { try $0.decode(column: "QUERY PLAN", as: String.self) }.joined(separator: "\n")
            }
            #expect(plan.contains("plugin_kv_org"), "\(plan)")
        }
    }

    /// A plugin whose release starts declaring `orgWideReads` finds its keys written before in
    /// the org's views after the next start; one that stops is forgotten by the index.
    @Test(arguments: TestEngines.all)
    func aPluginThatStartsReadingAcrossAnOrgHasItsKeysIndexedAtStart(engine: StorageEngine) async throws {
        try await Self.withInstall(engine) { database, org, installID in
            let before = HostStorageProvider(database: database, clock: .system, orgWideReads: [])
            try await before.reconcileOrgIndex(logger: TestDatabase.logger)
            _ = try await before.storage(plugin: "notes", install: installID, org: org).set("note_1", .string("in the install"))
            _ = try await before.orgStorage(plugin: "notes", org: org).own.set("note_2", .string("the org's own"))
            #expect(try await Self.orgs(of: "notes", on: database) == ["note_1": nil, "note_2": nil])

            let after = HostStorageProvider(database: database, clock: .system, orgWideReads: ["notes"])
            try await after.reconcileOrgIndex(logger: TestDatabase.logger)
            #expect(try await Self.orgs(of: "notes", on: database) == ["note_1": org, "note_2": org])
            let entries = try await after.orgStorage(plugin: "notes", org: org).entries(prefix: "note_", after: nil, limit: 10, newestFirst: false)
            #expect(entries.map(\.key) == ["note_1", "note_2"])
            #expect(entries.map(\.installID) == [installID, nil])
            // Nothing to do at the next start.
            #expect(try await database.transaction { try await PluginDataStore.indexByOrg(["notes"], at: 1, on: $0) } == [])

            func indexed() async throws -> [String] {
                try await database.read { try await $0.raw("SELECT plugin_id FROM plugin_org_index ORDER BY plugin_id").all() }
                    .map { try $0.decode(column: "plugin_id", as: String.self) }
            }
            #expect(try await indexed().contains("notes"))
            // Stopping: forgotten, so a later release that declares it again fills its new keys in.
            try await before.reconcileOrgIndex(logger: TestDatabase.logger)
            #expect(try await !indexed().contains("notes"))
            _ = try await before.storage(plugin: "notes", install: installID, org: org).set("note_3", .string("later"))
            try await after.reconcileOrgIndex(logger: TestDatabase.logger)
            #expect(try await Self.orgs(of: "notes", on: database)["note_3"] == org)
        }
    }

    /// Migration 44 makes the org index partial and names the plugins whose keys it holds.
    @Test(arguments: TestEngines.all)
    func migration44KeepsTheIndexedPluginsIndexed(engine: StorageEngine) async throws {
        try await withTestDatabase(engine, migrate: false) { test async throws in
            let db = test.database
            let upTo43 = MigrationRunner(migrations: Schema.runner.migrations.filter { $0.id <= 43 })
            _ = try await upTo43.migrate(db, logger: TestDatabase.logger)
            try await db.transaction { db in
                for (plugin, key) in [("audit", "a"), ("kv", "b"), ("kv", "c")] {
                    try await db.raw("""
                        INSERT INTO plugin_kv (plugin_id, install_id, org_id, key, value, size, version, updated_at)
                        VALUES (\(bind: plugin), 'ins_x', 'org_x', \(bind: key), '1', 2, 1, 1)
                        """).run()
                }
            }
            let upTo44 = MigrationRunner(migrations: Schema.runner.migrations.filter { $0.id <= 44 })
            #expect(try await upTo44.migrate(db, logger: TestDatabase.logger) == [44])
            let indexed = try await db.read { try await $0.raw("SELECT plugin_id FROM plugin_org_index ORDER BY plugin_id").all() }
                .map { try $0.decode(column: "plugin_id", as: String.self) }
            #expect(indexed == ["audit", "kv"])
            let definition: SQLQueryString = engine == .sqlite
                ? "SELECT sql AS definition FROM sqlite_master WHERE type = 'index' AND name = 'plugin_kv_org'"
                : "SELECT indexdef AS definition FROM pg_indexes WHERE indexname = 'plugin_kv_org'"
            let text = try await db.read { try await $0.raw(definition).first()?.decode(column: "definition", as: String.self) }
            #expect(text?.contains("org_id IS NOT NULL") == true, "\(text ?? "no index")")
        }
    }
}
