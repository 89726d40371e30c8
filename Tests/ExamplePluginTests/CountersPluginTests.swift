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
        #expect(host.emitted.first?.event.data == ["name": "visits", "value": 120])
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
        _ = try await CountersPlugin().handle(host.command("counters.increment", ["name": "x", "by": 100], install), host.context(install))
        #expect(!host.keys(in: install.installID).isEmpty)
        try await CountersPlugin().installRemoved(install, host.context(install))
        #expect(host.keys(in: install.installID).isEmpty)
    }

    @Test func listsTheOrgsMilestonesPageByPage() async throws {
        let host = FakeHost()
        let org = OrgInfo(id: "org_a", name: "A", plan: "pro")
        let (first, second) = (host.install(org: org), host.install(org: org))
        let elsewhere = host.install(org: OrgInfo(id: "org_b", name: "B", plan: "pro"))
        let plugin = CountersPlugin()
        for install in [first, second, elsewhere] {
            _ = try await plugin.handle(host.command("counters.increment", ["name": "visits", "by": 100], install), host.context(install))
        }
        var seen: [JSONValue] = []
        var after: String?
        for _ in 0 ..< 5 {
            var query = ["limit": "1"]
            query["after"] = after
            let request = RouteRequest(method: .get, route: "counters/milestones", query: query, org: org, callerID: "usr_test", callerRole: .member)
            guard case .json(let page, status: 200) = try await plugin.handleRoute(request, host.orgContext(org, for: plugin)) else {
                Issue.record("not a JSON page")
                return
            }
            seen += page["items"]?.arrayValue ?? []
            after = page["next"]?.stringValue
            if after == nil { break }
        }
        #expect(after == nil && seen.count == 2)
        #expect(Set(seen.compactMap { $0["install_id"]?.stringValue }) == [first.installID, second.installID])
        #expect(seen.allSatisfy { $0["value"] == 100 })
    }
}
