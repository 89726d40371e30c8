import KVPlugin
import MercatoHooks
import MercatoHooksTesting
import Testing

@Suite struct KVPluginTests {
    @Test func setGetDeleteWithVersions() async throws {
        let host = FakeHost()
        let install = host.install()
        let kv = KVPlugin()
        let first = try await kv.handle(host.command("kv.set", ["key": "a", "value": .object(["n": 1])], install), host.context(install))
        #expect(first["version"] == .number(1))
        let second = try await kv.handle(host.command("kv.set", ["key": "a", "value": .number(2)], install), host.context(install))
        #expect(second["version"] == .number(2))
        let got = try await kv.handle(host.command("kv.get", ["key": "a"], install), host.context(install))
        #expect(got["value"] == .number(2))
        #expect(try await kv.handle(host.command("kv.delete", ["key": "a"], install), host.context(install))["deleted"] == .bool(true))
        await #expect(throws: CommandError.self) { try await kv.handle(host.command("kv.get", ["key": "a"], install), host.context(install)) }
    }

    @Test func listPagesByPrefix() async throws {
        let host = FakeHost()
        let install = host.install()
        let kv = KVPlugin()
        for i in 0 ..< 105 { _ = try await kv.handle(host.command("kv.set", ["key": .string("p/\(1000 + i)"), "value": .bool(true)], install), host.context(install)) }
        _ = try await kv.handle(host.command("kv.set", ["key": "other", "value": .bool(true)], install), host.context(install))
        let page1 = try await kv.handle(host.command("kv.list", ["prefix": "p/"], install), host.context(install))
        #expect(page1["keys"]?.arrayValue?.count == 100)
        let page2 = try await kv.handle(host.command("kv.list", ["prefix": "p/", "cursor": page1["next_cursor"]!], install), host.context(install))
        #expect(page2["keys"]?.arrayValue?.count == 5)
        #expect(page2["next_cursor"] == .null)
    }

    @Test func quotaIsTheHosts() async throws {
        let host = FakeHost(quotaBytes: 100)
        let install = host.install()
        await #expect(throws: CommandError.self) {
            try await KVPlugin().handle(host.command("kv.set", ["key": "big", "value": .string(String(repeating: "x", count: 200))], install), host.context(install))
        }
    }

    @Test func uninstallDropsEverything() async throws {
        let host = FakeHost()
        let install = host.install()
        _ = try await KVPlugin().handle(host.command("kv.set", ["key": "a", "value": .number(1)], install), host.context(install))
        try await KVPlugin().installRemoved(install, host.context(install))
        #expect(host.keys(in: install.installID).isEmpty)
    }
}
