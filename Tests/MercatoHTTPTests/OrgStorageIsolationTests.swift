import Foundation
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import Testing

@Suite("A plugin's org-level storage reaches only the org's own installs")
struct OrgStorageIsolationTests {
    /// `OrgStorage.install(_:)` takes an install id that can come from a request: another org's
    /// install (or an unknown id) is refused and its data neither read, written nor deleted.
    @Test(arguments: TestEngines.all)
    func anotherOrgsInstallIsNotReachable(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let f = try await app.installFixture()
            let installID = try #require(try await app.install("acme-crm", token: f.owner).json["id"] as? String)
            let (otherOrg, _) = try await app.makeOrg(plan: "pro", name: "Intruder")
            let provider = HostStorageProvider(database: app.runtime.database, clock: .system, orgWideReads: ["audit"])

            let mine = provider.orgStorage(plugin: "audit", org: f.org).install(installID)
            #expect(try await mine.set("note", .string("kept")) == 1)

            let theirs = provider.orgStorage(plugin: "audit", org: otherOrg).install(installID)
            for attempt in [
                { _ = try await theirs.get("note") },
                { _ = try await theirs.set("note", .string("overwritten")) },
                { _ = try await theirs.delete("note") },
                { _ = try await theirs.keys(prefix: "", after: nil, limit: 10) },
                { try await theirs.deleteAll() },
            ] as [@Sendable () async throws -> Void] {
                await #expect(throws: CommandError.self) { try await attempt() }
            }
            let unknown = provider.orgStorage(plugin: "audit", org: f.org).install("ins_01unknownunknownunknownun")
            await #expect(throws: CommandError.self) { _ = try await unknown.get("note") }

            #expect(try await mine.get("note") == StoredValue(value: .string("kept"), version: 1))
        }
    }
}
