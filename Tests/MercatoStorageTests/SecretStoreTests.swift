import Foundation
import MercatoCore
import MercatoCrypto
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Synchronization
import Testing

/// State the concurrent tasks of a test share.
final class Shared: Sendable {
    let stop = Atomic<Bool>(false)
    let reads = Atomic<Int>(0)
    /// The last generation written, per index.
    let generation = Mutex<[Int: Int]>([:])
}

@Suite("Secrets at rest, on both engines")
struct SecretStoreTests {
    @Test(arguments: TestEngines.all)
    func aCiphertextCopiedBySQLIntoAnotherRowFailsToOpen(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let secrets = SecretStore(vault: Vault(keyring: .generate()))
            let a = SealContext(org: "org_a", owner: "ins_a", purpose: "config.api_key")
            let b = SealContext(org: "org_a", owner: "ins_b", purpose: "config.api_key")
            let c = SealContext(org: "org_c", owner: "ins_c", purpose: "config.api_key")
            try await test.database.transaction { db in
                try await secrets.put("value of a", for: a, on: db)
                try await secrets.put("value of b", for: b, on: db)
                try await secrets.put("value of c", for: c, on: db)
            }
            #expect(try await test.database.read { try await secrets.get(b, on: $0) } == "value of b")
            // Same org, another install; then another org.
            for target in [b, c] {
                try await test.database.transaction { db in
                    try await db.raw("""
                        UPDATE sealed_values SET ciphertext = (SELECT ciphertext FROM sealed_values WHERE owner_id = \(bind: a.owner))
                        WHERE owner_id = \(bind: target.owner)
                        """).run()
                }
                await #expect(throws: VaultError.authenticationFailed) {
                    _ = try await test.database.read { try await secrets.get(target, on: $0) }
                }
            }
            // Nothing stored in clear.
            let stored = try await test.database.read { db in
                try await db.raw("SELECT ciphertext FROM sealed_values").all().map { try $0.decode(column: "ciphertext", as: String.self) }
            }
            for text in stored { #expect(!text.contains("value of")) }
        }
    }

    /// Readers and writers hammer the secrets while the key is rotated and everything is
    /// re-sealed: no read fails, none returns another value, and at the end every value is
    /// under the new version and the old version can be retired.
    @Test(arguments: TestEngines.all)
    func rotationUnderConcurrentReadsAndWrites(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rot-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = dir.appendingPathComponent("master.key")
            try Keyring.generate().write(to: file)
            let serverVault = Vault(keyring: try Keyring(contentsOf: file), reload: { try Keyring(contentsOf: file) })
            let server = SecretStore(vault: serverVault)

            let contexts = (0 ..< 120).map { SealContext(org: "org_\($0 % 7)", owner: "ins_\($0)", purpose: "config.token") }
            try await test.database.transaction { db in
                for (i, context) in contexts.enumerated() { try await server.put("secret-\(i)-gen0", for: context, on: db) }
            }
            let shared = Shared()

            try await withThrowingTaskGroup(of: Void.self) { group in
                for reader in 0 ..< 4 {
                    group.addTask {
                        var i = reader
                        while !shared.stop.load(ordering: .relaxed) {
                            let index = i % contexts.count
                            let value = try await test.database.read { try await server.get(contexts[index], on: $0) }
                            let prefix = "secret-\(index)-gen"
                            #expect(value?.hasPrefix(prefix) == true, "index \(index) read \(value ?? "nil")")
                            shared.reads.add(1, ordering: .relaxed)
                            i += 5
                            // A read on SQLite runs on the caller and never suspends: without
                            // this, four reading loops would hold both threads of the shared
                            // executor and the rotator would never run.
                            await Task.yield()
                        }
                    }
                }
                group.addTask {
                    var gen = 1
                    while !shared.stop.load(ordering: .relaxed) {
                        let index = (gen * 13) % contexts.count
                        let written = gen
                        try await test.database.transaction { db in
                            try await server.put("secret-\(index)-gen\(written)", for: contexts[index], on: db)
                        }
                        shared.generation.withLock { $0[index] = written }
                        gen += 1
                        try await Task.sleep(for: .milliseconds(2))
                    }
                }
                group.addTask {
                    // The rotator: another process's view of the same key file.
                    try await Task.sleep(for: .milliseconds(100))
                    let next = try Keyring(contentsOf: file).addingVersion()
                    try next.write(to: file)
                    try serverVault.reload()      // what KeyringWatcher does on the server
                    let rotatorVault = Vault(keyring: next)
                    let report = try await KeyRotation(database: test.database, vault: rotatorVault, logger: TestDatabase.logger).resealAll()
                    #expect(report.unopenable.isEmpty)
                    // Readers and the writer go on past the rotation: at least 100 ms, and at
                    // least 100 reads in all (a loaded machine reads slower).
                    try await Task.sleep(for: .milliseconds(100))
                    while shared.reads.load(ordering: .relaxed) <= 100 { try await Task.sleep(for: .milliseconds(10)) }
                    shared.stop.store(true, ordering: .relaxed)
                }
                try await group.waitForAll()
            }
            #expect(shared.reads.load(ordering: .relaxed) > 100)
            let counts = try await test.database.read { try await SealedValueStore.countByKeyVersion(on: $0) }
            #expect(counts == [2: contexts.count])

            // Retire version 1: every value still opens, with its latest generation.
            let retired = SecretStore(vault: Vault(keyring: try Keyring(contentsOf: file).removingVersion(1)))
            let last = shared.generation.withLock { $0 }
            for (index, context) in contexts.enumerated() {
                let value = try await test.database.read { try await retired.get(context, on: $0) }
                #expect(value == "secret-\(index)-gen\(last[index] ?? 0)")
            }
        }
    }

    @Test(arguments: TestEngines.all)
    func deletingAnOwnerRemovesAllItsSecrets(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let secrets = SecretStore(vault: Vault(keyring: .generate()))
            try await test.database.transaction { db in
                for purpose in ["config.a", "config.b"] {
                    try await secrets.put("x", for: SealContext(org: "org_1", owner: "ins_gone", purpose: purpose), on: db)
                }
                try await secrets.put("y", for: SealContext(org: "org_1", owner: "ins_kept", purpose: "config.a"), on: db)
            }
            let removed = try await test.database.transaction { try await secrets.deleteAll(owner: "ins_gone", on: $0) }
            #expect(removed == 2)
            #expect(try await test.database.read { try await SealedValueStore.all(owner: "ins_gone", on: $0) }.isEmpty)
            #expect(try await test.database.read { try await SealedValueStore.all(owner: "ins_kept", on: $0) }.count == 1)
        }
    }
}
