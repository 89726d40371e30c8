import Foundation
import HTTPTypes
import HummingbirdTesting
import InboundPlugin
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

@Suite("KV plugin through the gateway, and plugin data on uninstall")
struct KVTests {
    @Test(arguments: TestEngines.all)
    func setGetListDeleteAndDropOnUninstall(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: GatewayTests.plugins) { app in
            let s = try await app.commandSender(scopes: ["kv:read", "kv:write"], key: "kv-app")
            func run(_ command: String, _ args: [String: Any]) async throws -> Answer {
                let (h, b) = try s.sign(["install_id": s.installID, "command": command, "args": args])
                return try await app.send(h, b)
            }
            let value: [String: Any] = ["deal": 42, "tags": ["a", "b"], "nested": ["ok": true]]
            let set1 = try await run("kv.set", ["key": "deals/100%_done", "value": value])
            #expect(set1.status == .ok, "\(set1.text)")
            #expect((set1.json["result"] as? [String: Any])?["version"] as? Int == 1)
            #expect(((try await run("kv.set", ["key": "deals/100%_done", "value": value])).json["result"] as? [String: Any])?["version"] as? Int == 2)
            _ = try await run("kv.set", ["key": "deals/100x", "value": 1])
            _ = try await run("kv.set", ["key": "other", "value": "x"])

            let got = try await run("kv.get", ["key": "deals/100%_done"])
            let result = try #require(got.json["result"] as? [String: Any])
            #expect(result["version"] as? Int == 2)
            #expect((result["value"] as? [String: Any])?["deal"] as? Int == 42)
            #expect(((result["value"] as? [String: Any])?["nested"] as? [String: Any])?["ok"] as? Bool == true)

            let listed = try await run("kv.list", ["prefix": "deals/100%"])
            #expect((listed.json["result"] as? [String: Any])?["keys"] as? [String] == ["deals/100%_done"])
            let all = try await run("kv.list", [:])
            #expect((all.json["result"] as? [String: Any])?["keys"] as? [String] == ["deals/100%_done", "deals/100x", "other"])

            #expect(((try await run("kv.delete", ["key": "other"])).json["result"] as? [String: Any])?["deleted"] as? Bool == true)
            #expect(((try await run("kv.delete", ["key": "other"])).json["result"] as? [String: Any])?["deleted"] as? Bool == false)
            let missing = try await run("kv.get", ["key": "other"])
            #expect(missing.status == .notFound)
            #expect(missing.json["code"] as? String == "not_found")

            // NUL in a key or a command name: refused or logged safely, never a failed log batch.
            let nulKey = try await run("kv.set", ["key": "a\u{0}b", "value": 1])
            #expect(nulKey.status == .unprocessableContent)
            #expect(nulKey.json["code"] as? String == "invalid_args")
            let (nh, nb) = try s.sign(["install_id": s.installID, "command": "kv.g\u{0}et", "args": ["key": "x"]])
            let nulCommand = try await app.send(nh, nb)
            #expect(nulCommand.json["code"] as? String == "unknown_command")
            #expect(try await run("kv.get", ["key": "deals/100x"]).status == .ok)

            // Deep in the value too, named by its path.
            let nulValue = try await run("kv.set", ["key": "deep", "value": ["note": ["fine", "a\u{0}b"]]])
            #expect(nulValue.status == .unprocessableContent)
            #expect((nulValue.json["detail"] as? String)?.contains("args.value.note[1]") == true, "\(nulValue.text)")
            // 64 KiB of JSON as stored: a string of 65,534 characters and its two quotes fit.
            let fits = try await run("kv.set", ["key": "edge", "value": String(repeating: "x", count: 64 * 1024 - 2)])
            #expect(fits.status == .ok, "\(fits.text)")
            #expect(try await run("kv.set", ["key": "edge", "value": String(repeating: "x", count: 64 * 1024 - 1)]).status == .unprocessableContent)
            #expect(try await run("kv.delete", ["key": "edge"]).status == .ok)
            let big = try await run("kv.set", ["key": "big", "value": String(repeating: "x", count: 65 * 1024)])
            #expect(big.status == .unprocessableContent)
            #expect(big.json["code"] as? String == "invalid_args")
            #expect(try await run("kv.set", ["value": 1]).json["code"] as? String == "invalid_args")

            // Uninstall: the hook runs from the outbox and the data is gone.
            let count = { try await app.runtime.database.read { try await PluginDataStore.count(install: s.installID, on: $0) } }
            #expect(try await count() == 2)
            #expect(try await app.call(.delete, "/api/v1/installs/\(s.installID)", token: s.adminToken).status == .ok)
            try await app.runtime.hooks.dispatchPending()
            #expect(try await count() == 0)
            // Events already handled are not handled twice.
            #expect(try await app.runtime.hooks.dispatchPending() == 0)
        }
    }

    @Test(arguments: TestEngines.all)
    func storageIsNamespacedAndQuotaBound(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test in
            let a = HostPluginStorage(database: test.database, plugin: "kv", install: "ins_a", org: "org_x", quotaBytes: 100, clock: .system)
            let b = HostPluginStorage(database: test.database, plugin: "kv", install: "ins_b", org: "org_x", quotaBytes: 100, clock: .system)
            let other = HostPluginStorage(database: test.database, plugin: "tasks", install: "ins_a", org: "org_x", quotaBytes: 100, clock: .system)
            #expect(try await a.set("k", .string(String(repeating: "x", count: 60))) == 1)
            #expect(try await b.get("k") == nil)
            #expect(try await other.get("k") == nil)
            // Replacing a key counts its new size only.
            #expect(try await a.set("k", .string(String(repeating: "y", count: 80))) == 2)
            await #expect(throws: CommandError.self) { _ = try await a.set("k2", .string(String(repeating: "z", count: 30))) }
            try await other.deleteAll()
            #expect(try await a.get("k")?.version == 2)
        }
    }

    @Test(arguments: TestEngines.all)
    func oneBatchKeepsOrderVersionsAndQuota(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test in
            // Sizes count key + value; the quota is 40 bytes.
            func put(_ key: String, _ value: String) -> PluginDataStore.Write {
                .put(plugin: "kv", install: "ins_b", org: "org_b", key: key, value: value, quota: 40, at: 1)
            }
            let batch: [PluginDataStore.Write] = [
                put("a", "1111111111"), put("a", "22222"), put("b", "3333333333"),   // 11 → 6, then +11 = 17
                .delete(plugin: "kv", install: "ins_b", key: "a"),                    // 11
                .delete(plugin: "kv", install: "ins_b", key: "zz"),
                put("a", "44"),                                                        // 14
                put("c", String(repeating: "x", count: 30)),                           // 45 > 40: refused
                put("b", "5"),                                                         // 14 - 11 + 2 = 5
            ]
            let results = try await test.database.transaction { try await PluginDataStore.apply(batch, on: $0) }
            #expect(results == [.stored(version: 1), .stored(version: 2), .stored(version: 1), .deleted(existed: true),
                                .deleted(existed: false), .stored(version: 1), .overQuota, .stored(version: 2)])
            let read = { (key: String) in try await test.database.read { try await PluginDataStore.get(plugin: "kv", install: "ins_b", key: key, now: 0, on: $0) } }
            #expect(try await read("a")?.value == "44")
            #expect(try await read("a")?.version == 1)
            #expect(try await read("b")?.value == "5")
            #expect(try await read("b")?.version == 2)
            #expect(try await read("c") == nil)
            // The next batch starts from what is stored: a's version and the namespace's 5 bytes
            // (5 + 36 = 41 does not fit; 5 + 35 = 40 does).
            let second = [put("a", "55"), put("c", String(repeating: "y", count: 35)), put("d", String(repeating: "z", count: 34))]
            let next = try await test.database.transaction { try await PluginDataStore.apply(second, on: $0) }
            #expect(next == [.stored(version: 2), .overQuota, .stored(version: 1)])
        }
    }

    @Test(arguments: TestEngines.all)
    func concurrentWritesStayWithinTheQuota(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test in
            // Each write is 10 bytes (a 3-byte key, a 7-byte JSON string): 10 of 30 concurrent
            // writes fit in 100 bytes, however the group commit batches them.
            let storage = HostPluginStorage(database: test.database, plugin: "kv", install: "ins_q", org: "org_q", quotaBytes: 100, clock: .system)
            let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0 ..< 30 {
                    group.addTask {
                        do {
                            return try await storage.set(String(format: "k%02d", i), .string("xxxxx")) == 1
                        } catch let error as CommandError where error.code == "quota_exceeded" {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(accepted == 10)
            #expect(try await storage.keys(prefix: "k", after: nil, limit: 100).count == 10)
            // Replacing an existing key with one of the same size still fits.
            let first = try await storage.keys(prefix: "k", after: nil, limit: 1)[0]
            #expect(try await storage.set(first, .string("yyyyy")) == 2)
        }
    }
}

@Suite("An install's storage quota as the plugin's manifest declares it")
struct PluginInstallQuotaTests {
    @Test(arguments: TestEngines.all)
    func eachPluginGetsTheQuotaItDeclares(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let manifests = [PluginManifest(id: "small", version: "1", installStorageBytes: 300),
                             PluginManifest(id: "large", version: "1", installStorageBytes: 600),
                             PluginManifest(id: "plain", version: "1")]
            let provider = HostStorageProvider(database: test.database, clock: .system, manifests: manifests)
            // 403 bytes: a 3-byte key and a 400-byte JSON string.
            let value = JSONValue.string(String(repeating: "x", count: 398))
            await #expect(throws: CommandError.self) {
                try await provider.storage(plugin: "small", install: "ins_1", org: "org_1").set("big", value)
            }
            #expect(try await provider.storage(plugin: "large", install: "ins_1", org: "org_1").set("big", value) == 1)
            #expect(try await provider.storage(plugin: "plain", install: "ins_1", org: "org_1").set("big", value) == 1)
            // The declared quota is per install: another install of the large plugin has its own.
            #expect(try await provider.storage(plugin: "large", install: "ins_2", org: "org_1").set("big", value) == 1)
            await #expect(throws: CommandError.self) {
                try await provider.storage(plugin: "large", install: "ins_1", org: "org_1").set("big2", value)
            }
            // The receiving plugin declares room for its default allowance's records (CONTRACT §11).
            #expect((InboundPlugin.manifest.installStorageBytes ?? 0) > HostPluginStorage.defaultQuota)
        }
    }

    @Test func aQuotaThatIsNotPositiveStopsTheStart() {
        #expect(throws: CapabilityConflict.self) {
            try Capabilities(manifests: [PluginManifest(id: "broken", version: "1", installStorageBytes: 0)])
        }
    }
}

@Suite("Plugin keys that expire, on both engines")
struct PluginKeyExpiryTests {
    @Test(arguments: TestEngines.all)
    func anExpiredKeyReadsAsAbsentStartsAgainAndIsSwept(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test in
            let clock = ManualClock()
            let storage = HostPluginStorage(database: test.database, plugin: "inbound", install: "ins_e", org: "org_e", quotaBytes: 1000,
                                            clock: clock.wallClock)
            let soon = clock.wallClock.now().addingTimeInterval(60)
            #expect(try await storage.set("evt:a", .string("first"), expiresAt: soon) == 1)
            #expect(try await storage.set("evt:a", .string("second"), expiresAt: soon) == 2)
            #expect(try await storage.set("kept", .bool(true)) == 1)
            #expect(try await storage.get("evt:a")?.value == .string("second"))
            #expect(try await storage.keys(prefix: "", after: nil, limit: 10) == ["evt:a", "kept"])

            clock.advance(by: 61)
            #expect(try await storage.get("evt:a") == nil)
            #expect(try await storage.keys(prefix: "", after: nil, limit: 10) == ["kept"])
            // Written again after it expired: a new key (version 1), kept until deleted this time.
            #expect(try await storage.set("evt:a", .string("third")) == 1)
            clock.advance(by: 3600)
            #expect(try await storage.get("evt:a")?.value == .string("third"))

            // The sweep removes expired rows only.
            #expect(try await storage.set("evt:b", .string("old"), expiresAt: clock.wallClock.now().addingTimeInterval(1)) == 1)
            #expect(try await storage.set("evt:c", .string("young"), expiresAt: clock.wallClock.now().addingTimeInterval(600)) == 1)
            clock.advance(by: 2)
            let count = { try await test.database.read { try await PluginDataStore.count(install: "ins_e", on: $0) } }
            #expect(try await count() == 4)
            let service = RetentionService(database: test.database, clock: clock.wallClock, logger: TestDatabase.logger, idempotencyHours: 48, commandLogDays: 30)
            try await service.sweep()
            #expect(try await count() == 3)
            #expect(try await storage.get("evt:c")?.value == .string("young"))
            #expect(try await storage.get("kept")?.value == .bool(true))
        }
    }
}

@Suite("Plugin namespaces' byte count, on both engines")
struct PluginUsageTests {
    /// `plugin_usage` (what the quota reads) equals the sum of the namespace's key and value
    /// sizes after every kind of change: batched puts and overwrites, deletes, the expiry sweep,
    /// a namespace's removal; other namespaces are not touched.
    @Test(arguments: TestEngines.all)
    func theCountFollowsEveryChange(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test in
            let clock = ManualClock()
            let a = HostPluginStorage(database: test.database, plugin: "kv", install: "ins_u", org: "org_u", quotaBytes: 10_000, clock: clock.wallClock)
            let b = HostPluginStorage(database: test.database, plugin: "tasks", install: "ins_u", org: "org_u", quotaBytes: 10_000, clock: clock.wallClock)
            func check(_ plugin: String, _ expected: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let (stored, summed) = try await test.database.read { db in
                    (try await PluginDataStore.storedBytes(plugin: plugin, install: "ins_u", on: db),
                     try await db.raw("SELECT COALESCE(SUM(size), 0) AS n FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = 'ins_u'")
                        .first()!.decode(column: "n", as: Int.self))
                }
                #expect(stored == summed, sourceLocation: sourceLocation)
                #expect(stored == expected, sourceLocation: sourceLocation)
            }
            try await check("kv", 0)
            // Concurrent puts (one group-commit batch or several): "k0".."k9" with 7-byte values.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0 ..< 10 { group.addTask { _ = try await a.set("k\(i)", .string("xxxxx")) } }
                try await group.waitForAll()
            }
            try await check("kv", 10 * 9)
            _ = try await a.set("k0", .string(String(repeating: "y", count: 50)))      // 9 → 54
            try await check("kv", 9 * 9 + 54)
            #expect(try await a.delete("k1"))
            #expect(try await !a.delete("nope"))
            try await check("kv", 8 * 9 + 54)
            _ = try await b.set("t", .bool(true))
            try await check("tasks", 5)
            _ = try await a.set("gone", .string("soon"), expiresAt: clock.wallClock.now().addingTimeInterval(1))
            #expect(try await !a.create("gone", .string("again"), expiresAt: nil, emitting: []))
            try await check("kv", 8 * 9 + 54 + 10)
            clock.advance(by: 2)
            let service = RetentionService(database: test.database, clock: clock.wallClock, logger: TestDatabase.logger, idempotencyHours: 48, commandLogDays: 30)
            try await service.sweep()
            try await check("kv", 8 * 9 + 54)
            try await a.deleteAll()
            try await check("kv", 0)
            try await check("tasks", 5)
        }
    }
}

@Suite("Plugin storage: create with its events in one transaction, on both engines")
struct PluginCreateTests {
    @Test(arguments: TestEngines.all)
    func oneOfManyRacingCreatesWritesAndOnlyItsEventsEnterTheOutbox(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: GatewayTests.plugins) { app in
            let s = try await app.commandSender(scopes: ["kv:read"], key: "race-app")
            let database = app.runtime.database
            let install = try #require(try await database.read { try await InstallStore.live(id: s.installID, on: $0) })
            let storage = HostPluginStorage(database: database, plugin: "inbound", install: s.installID, org: install.orgId, clock: .system)
            let event = EventDraft(type: "inbound.received", data: .object(["event_id": .string("evt_1")]))
            let outbox = {
                try await database.read { db in
                    try await db.raw("SELECT id FROM outbox_events WHERE install_id = \(bind: s.installID) AND type = 'inbound.received'").all().count
                }
            }
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0 ..< 20 {
                    group.addTask { try await storage.create("evt:x", .string("record"), expiresAt: nil, emitting: [event]) }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(wins == 1)
            #expect(try await outbox() == 1)
            #expect(try await storage.get("evt:x") == StoredValue(value: .string("record"), version: 1))
            // A key that holds a value: nothing written, nothing emitted.
            #expect(try await storage.create("evt:x", .string("other"), expiresAt: nil, emitting: [event]) == false)
            #expect(try await outbox() == 1)
            // A key whose value expired is free again (version 1).
            _ = try await storage.set("evt:y", .string("old"), expiresAt: Date().addingTimeInterval(-1))
            #expect(try await storage.create("evt:y", .string("new"), expiresAt: nil, emitting: [event]) == true)
            #expect(try await storage.get("evt:y") == StoredValue(value: .string("new"), version: 1))
            #expect(try await outbox() == 2)
            // An org's own namespace has no install to emit for.
            let own = HostPluginStorage(database: database, plugin: "inbound", install: install.orgId, org: install.orgId, clock: .system)
            await #expect(throws: CommandError.self) { _ = try await own.create("k", .null, expiresAt: nil, emitting: [event]) }
            #expect(try await own.create("k", .null, expiresAt: nil, emitting: []) == true)
            // An uninstalled install's create fails and leaves nothing.
            let gone = HostPluginStorage(database: database, plugin: "inbound", install: "ins_00000000000000000000000000", org: install.orgId, clock: .system)
            await #expect(throws: CommandError.self) { _ = try await gone.create("evt:z", .string("r"), expiresAt: nil, emitting: [event]) }
            #expect(try await gone.get("evt:z") == nil)
        }
    }
}
