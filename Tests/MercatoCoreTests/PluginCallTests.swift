import Logging
@testable import MercatoCore
import MercatoHooks
import MercatoStorage
import Testing

/// A plugin call's own task (`PluginHost.call`): detached from the caller's task-locals, except
/// the install a public route serves, which the call carries over.
@Suite("Plugin call task")
struct PluginCallTests {
    /// No plugin here asks for storage.
    struct NoStorage: PluginStorageProvider {
        func storage(plugin: String, install: String, org: String) -> any PluginStorage { fatalError("not used") }
        func orgStorage(plugin: String, org: String) -> any OrgStorage { fatalError("not used") }
    }

    @TaskLocal static var callerOnly: String?

    @Test func theServedInstallReachesTheCallAndNothingElseDoes() async throws {
        let host = try PluginHost(plugins: [], logger: Logger(label: "test"), storage: NoStorage())
        let install = InstallRecord(id: "ins_served", orgId: "org_1", appId: "app_1", appKey: "app-1", version: "1.0.0", status: .active,
                                    scopes: [], configKeys: [], createdBy: "usr_1", createdAt: 1, updatedAt: 1, removedAt: nil)
        let seen = await InstallService.$servedInstall.withValue(install) {
            await Self.$callerOnly.withValue("caller") {
                await host.call(plugin: "probe", hook: "test", timeout: .seconds(5)) { () async throws -> [String?] in
                    let before = [InstallService.servedInstall?.id, Self.callerOnly]
                    // Also after the body's first suspension, when it runs on its own.
                    try await Task.sleep(for: .milliseconds(2))
                    return before + [InstallService.servedInstall?.id, Self.callerOnly]
                }
            }
        }
        #expect(try seen.get() == ["ins_served", nil, "ins_served", nil])
        // Outside a served install the call sees none.
        let outside = await host.call(plugin: "probe", hook: "test", timeout: .seconds(5)) { InstallService.servedInstall?.id }
        #expect(try outside.get() == nil)
    }
}
