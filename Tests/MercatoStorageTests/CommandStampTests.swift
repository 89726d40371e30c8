import Foundation
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// The gateway compares a cached target with the install's stored stamp: read alone
/// (`CommandStore.stamp`) when no key is looked up, or within the command's one statement
/// (`CommandStore.check`). Both must read the same stamp, on both engines and both paths (a
/// prepared statement on PostgreSQL, a reader's statement on SQLite).
@Suite("Command stamp: read alone as within the check")
struct CommandStampTests {
    func insertInstall(_ db: Database) async throws {
        try await db.transaction { db in
            try await db.raw("INSERT INTO orgs (id, name, plan, created_at) VALUES ('org_1', 'Acme', 'pro', 1)").run()
            try await db.raw("""
                INSERT INTO apps (id, key, developer_org_id, status, latest_version, name, plan, search_text, created_at, updated_at)
                VALUES ('app_1', 'stamp-app', 'org_1', 'published', '1.0.0', 'Stamp', 'free', 'stamp', 1, 1)
                """).run()
            try await db.raw("INSERT INTO app_secrets (id, app_id, kind, created_at, valid_until) VALUES ('sec_1', 'app_1', 'command', 1, NULL)").run()
            try await db.raw("""
                INSERT INTO installs (id, org_id, app_id, app_key, version, status, scopes, config_keys, created_by, created_at, updated_at, removed_at)
                VALUES ('ins_1', 'org_1', 'app_1', 'stamp-app', '1.0.0', 'active', '["kv:read"]', '[]', 'usr_1', 1, 5, NULL)
                """).run()
        }
    }

    /// Both entry points of both reads.
    func stamps(_ db: Database, install: String = "ins_1") async throws -> [CommandCheck.Stamp?] {
        [
            try await CommandStore.stamp(install: install, in: db),
            try await db.read { try await CommandStore.stamp(install: install, on: $0) },
            try await CommandStore.check(install: install, webhookID: "w1", in: db)?.stamp,
            try await db.read { try await CommandStore.check(install: install, webhookID: "w1", on: $0) }?.stamp,
        ]
    }

    @Test(arguments: TestEngines.all)
    func theStampAloneIsTheCheckStampAndMovesWithIt(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let db = test.database
            try await insertInstall(db)
            let first = CommandCheck.Stamp(status: "active", version: "1.0.0", scopes: "[\"kv:read\"]", updatedAt: 5, removedAt: nil,
                                           appLatestVersion: "1.0.0", newestSecretID: "1:sec_1")
            #expect(try await stamps(db) == Array(repeating: first, count: 4))
            // Read twice on the same connections (the prepared statement reused): same answer.
            #expect(try await stamps(db) == Array(repeating: first, count: 4))

            // A stored answer of a key is the check's business, not the stamp's.
            try await db.transaction {
                try await CommandStore.insertIdempotency([IdempotencyRecord(appId: "app_1", webhookId: "w1", bodySha256: "h", httpStatus: 200,
                                                                            response: "{}", createdAt: 9)], on: $0)
            }
            #expect(try await CommandStore.check(install: "ins_1", webhookID: "w1", in: db)?.idempotency?.bodySha256 == "h")
            #expect(try await stamps(db) == Array(repeating: first, count: 4))

            // A rotation (a new secret), an uninstall and a new app version all move it, alike in both reads.
            try await db.transaction { db in
                try await db.raw("INSERT INTO app_secrets (id, app_id, kind, created_at, valid_until) VALUES ('sec_2', 'app_1', 'command', 2, NULL)").run()
                try await db.raw("UPDATE installs SET status = 'uninstalled', removed_at = 7, updated_at = 7 WHERE id = 'ins_1'").run()
                try await db.raw("UPDATE apps SET latest_version = '1.1.0' WHERE id = 'app_1'").run()
            }
            let moved = CommandCheck.Stamp(status: "uninstalled", version: "1.0.0", scopes: "[\"kv:read\"]", updatedAt: 7, removedAt: 7,
                                           appLatestVersion: "1.1.0", newestSecretID: "2:sec_2")
            #expect(try await stamps(db) == Array(repeating: moved, count: 4))

            // No such install: nil from every read.
            #expect(try await stamps(db, install: "ins_none") == [nil, nil, nil, nil])
        }
    }

    /// The batched check answers, key by key and in order, what the single check answers: the
    /// same install twice with different keys, a key with a stored answer, a rate override, an
    /// unknown install, and a key repeated.
    @Test(arguments: TestEngines.all)
    func aBatchOfChecksAnswersAsEachCheckAlone(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let db = test.database
            try await insertInstall(db)
            try await db.transaction { db in
                try await CommandStore.insertIdempotency([IdempotencyRecord(appId: "app_1", webhookId: "answered", bodySha256: "h", httpStatus: 201,
                                                                            response: "{\"ok\":true}", createdAt: 9)], on: db)
                try await db.raw("INSERT INTO install_rate_limits (install_id, per_second, burst, updated_at) VALUES ('ins_1', 2.5, 7, 1)").run()
            }
            let keys = [("ins_1", "new"), ("ins_none", "answered"), ("ins_1", "answered"), ("ins_1", "new"), ("ins_1", "other")]
                .map { CommandStore.CheckKey(install: $0.0, webhookID: $0.1) }
            var alone: [CommandCheck?] = []
            for key in keys { alone.append(try await CommandStore.check(install: key.install, webhookID: key.webhookID, in: db)) }
            #expect(alone[1] == nil)
            #expect(alone[2]?.idempotency?.httpStatus == 201)
            #expect(alone[0]?.idempotency == nil)
            #expect(alone[0]?.ratePerSecond == 2.5 && alone[0]?.rateBurst == 7)
            // Twice: the prepared statement reused on the same connections.
            #expect(try await CommandStore.checks(keys, in: db) == alone)
            #expect(try await CommandStore.checks(keys, in: db) == alone)
            #expect(try await CommandStore.checks([], in: db).isEmpty)
            // More keys than one statement's slots: answered in order across executions.
            let many = (0..<19).map { n in keys[n % keys.count] }
            #expect(many.count > 2 * CommandStore.checkSlots)
            #expect(try await CommandStore.checks(many, in: db) == many.indices.map { alone[$0 % keys.count] })
        }
    }
}
