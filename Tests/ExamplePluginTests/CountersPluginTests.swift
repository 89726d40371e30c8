import MercatoHooks
import MercatoHooksTesting
import Testing

@Suite struct CountersPluginTests {
    @Test func countsAndEmitsMilestones() async throws {
        let host = FakeHost()
        let install = host.install(scopes: ["counters:write"])
        let plugin = CountersPlugin()
        let first = try await plugin.handle(host.command("counters.increment", ["name": "visits", "by": 60], install), host.context(install))
        #expect(first["value"] == 60)
        let second = try await plugin.handle(host.command("counters.increment", ["name": "visits", "by": 60], install), host.context(install))
        #expect(second["value"] == 120)
        #expect(host.emitted.map(\.event.type) == ["counter.milestone"])
    }

    @Test func refusesABadStep() async throws {
        let host = FakeHost()
        let install = host.install()
        await #expect(throws: CommandError.invalidArgs(field: "args.by", "must be a whole number from 1 to 1000")) {
            try await CountersPlugin().handle(host.command("counters.increment", ["name": "x", "by": 0.5], install), host.context(install))
        }
    }

    @Test func uninstallDropsTheCounters() async throws {
        let host = FakeHost()
        let install = host.install()
        _ = try await CountersPlugin().handle(host.command("counters.increment", ["name": "x"], install), host.context(install))
        try await CountersPlugin().installRemoved(install, host.context(install))
        #expect(host.keys(in: install.installID).isEmpty)
    }
}
