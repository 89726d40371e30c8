import MercatoHooks
import MercatoHooksTesting
import NotificationsPlugin
import Testing

@Suite struct NotificationsPluginTests {
    let org = OrgInfo(id: "org_n", name: "N", plan: "free")

    func route(_ method: RouteDefinition.Method, _ route: String, _ parameters: [String: String] = [:], query: [String: String] = [:]) -> RouteRequest {
        RouteRequest(method: method, route: route, parameters: parameters, query: query, org: org, callerID: "usr_admin", callerRole: .member)
    }

    @Test func inboxAcrossInstallsNewestFirstThenDismiss() async throws {
        let host = FakeHost()
        let plugin = NotificationsPlugin()
        let a = host.install(app: "a", org: org), b = host.install(app: "b", org: org)
        var ids: [JSONValue] = []
        for (i, install) in [a, b, a].enumerated() {
            ids.append(try #require(try await plugin.handle(host.command("notifications.create", ["title": .string("n\(i)"), "level": "warning"], install),
                                                            host.context(install))["id"]))
            try await Task.sleep(for: .milliseconds(2))   // distinct creation times
        }
        guard case .json(let inbox, 200) = try await plugin.handleRoute(route(.get, "notifications"), host.orgContext(org, for: plugin)) else { Issue.record(); return }
        #expect(inbox["data"]?.arrayValue?.compactMap { $0["id"] } == ids.reversed())

        let dismissed = try await plugin.handleRoute(route(.post, "notifications/{id}/dismiss", ["id": ids[1].stringValue!]), host.orgContext(org, for: plugin))
        guard case .json(let one, _) = dismissed else { Issue.record(); return }
        #expect(one["dismissed_by"] == .string("usr_admin"))
        guard case .json(let unread, _) = try await plugin.handleRoute(route(.get, "notifications"), host.orgContext(org, for: plugin)) else { Issue.record(); return }
        #expect(unread["data"]?.arrayValue?.count == 2)
        guard case .json(let gone, _) = try await plugin.handleRoute(route(.get, "notifications", query: ["status": "dismissed"]), host.orgContext(org, for: plugin)) else { Issue.record(); return }
        #expect(gone["data"]?.arrayValue?.compactMap { $0["id"] } == [ids[1]])
    }

    @Test func anotherOrgsNotificationIsNotFound() async throws {
        let host = FakeHost()
        let other = host.install(org: OrgInfo(id: "org_other", name: "O", plan: "free"))
        let id = try await NotificationsPlugin().handle(host.command("notifications.create", ["title": "x"], other), host.context(other))["id"]!
        await #expect(throws: CommandError.self) {
            try await NotificationsPlugin().handleRoute(route(.post, "notifications/{id}/dismiss", ["id": id.stringValue!]), host.orgContext(org, for: NotificationsPlugin()))
        }
    }

    @Test func badInputIsRefusedWithTheField() async throws {
        let host = FakeHost()
        let install = host.install(org: org)
        for (args, field) in [(["title": JSONValue.string("x"), "level": "loud"], "args.level"), (["title": "x", "url": "javascript:alert(1)"], "args.url"),
                              (["title": "  "], "args.title")] {
            do {
                _ = try await NotificationsPlugin().handle(host.command("notifications.create", args, install), host.context(install))
                Issue.record("accepted \(args)")
            } catch let error as CommandError {
                #expect(error.code == "invalid_args")
                #expect(error.message.contains(field))
            }
        }
        await #expect(throws: CommandError.self) {
            try await NotificationsPlugin().handleRoute(route(.get, "notifications", query: ["status": "maybe"]), host.orgContext(org, for: NotificationsPlugin()))
        }
    }

    @Test func uninstallDropsTheInstallsNotifications() async throws {
        let host = FakeHost()
        let install = host.install(org: org)
        _ = try await NotificationsPlugin().handle(host.command("notifications.create", ["title": "x"], install), host.context(install))
        try await NotificationsPlugin().installRemoved(install, host.context(install))
        #expect(host.keys(in: install.installID).isEmpty)
    }
}
