import AuditPlugin
import Foundation
import MercatoHooks
import MercatoHooksTesting
import Testing

@Suite struct AuditPluginTests {
    func activity(_ n: Int, action: String = "app.installed", at seconds: TimeInterval) -> Activity {
        Activity(id: "aud_\(1000 + n)", action: action, actor: "usr_1", target: "ins_\(n)", requestID: "req_\(n)",
                 details: .object(["version": .string("1.0.0")]), occurredAt: Date(timeIntervalSince1970: 1_800_000_000 + seconds))
    }

    func get(_ route: String, _ org: OrgInfo, query: [String: String] = [:]) -> RouteRequest {
        RouteRequest(method: .get, route: route, query: query, org: org, callerID: "usr_1", callerRole: .admin)
    }

    @Test func recordsOncePerActivityAndFilters() async throws {
        let host = FakeHost()
        let org = OrgInfo(id: "org_a", name: "A", plan: "pro")
        let plugin = AuditPlugin()
        for n in 0 ..< 5 { try await plugin.activityRecorded(activity(n, action: n == 2 ? "token.created" : "app.installed", at: Double(n)), host.orgContext(org, for: plugin)) }
        try await plugin.activityRecorded(activity(4, at: 4), host.orgContext(org, for: plugin))     // redelivered: kept once
        guard case .json(let all, _) = try await plugin.handleRoute(get("audit", org), host.orgContext(org, for: plugin)) else { Issue.record(); return }
        #expect(all["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["aud_1004", "aud_1003", "aud_1002", "aud_1001", "aud_1000"])
        guard case .json(let tokens, _) = try await plugin.handleRoute(get("audit", org, query: ["action": "token.created"]), host.orgContext(org, for: plugin)) else { Issue.record(); return }
        #expect(tokens["data"]?.arrayValue?.count == 1)
        guard case .json(let recent, _) = try await plugin.handleRoute(get("audit", org, query: ["since": "2027-01-15T08:00:03Z"]), host.orgContext(org, for: plugin)) else { Issue.record(); return }
        #expect(recent["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["aud_1004", "aud_1003"])
        guard case .json(let page, _) = try await plugin.handleRoute(get("audit", org, query: ["limit": "2"]), host.orgContext(org, for: plugin)),
              let cursor = page["next_cursor"]?.stringValue else { Issue.record(); return }
        guard case .json(let rest, _) = try await plugin.handleRoute(get("audit", org, query: ["limit": "2", "cursor": cursor]), host.orgContext(org, for: plugin)) else { Issue.record(); return }
        #expect(rest["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["aud_1002", "aud_1001"])
    }

    @Test func csvExportNeedsEnterpriseAndDefusesFormulas() async throws {
        let host = FakeHost()
        let pro = OrgInfo(id: "org_p", name: "P", plan: "pro")
        do {
            _ = try await AuditPlugin().handleRoute(get("audit/export", pro), host.orgContext(pro, for: AuditPlugin()))
            Issue.record("exported on pro")
        } catch let error as CommandError {
            #expect(error.status == 403 && error.code == "plan_required")
        }
        let ent = OrgInfo(id: "org_e", name: "E", plan: "enterprise")
        var evil = activity(1, at: 1)
        evil.target = "=HYPERLINK(\"http://x\")"
        try await AuditPlugin().activityRecorded(evil, host.orgContext(ent, for: AuditPlugin()))
        guard case .file(let data, let type, _) = try await AuditPlugin().handleRoute(get("audit/export", ent), host.orgContext(ent, for: AuditPlugin())) else { Issue.record(); return }
        #expect(type.hasPrefix("text/csv"))
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\r\n")
        #expect(lines.first == "id,occurred_at,actor,action,target,request_id,details")
        #expect(lines.count == 2)
        #expect(lines[1].contains("\"'=HYPERLINK(\"\"http://x\"\")\""))
    }

    @Test func badTimeFilterNamesTheField() async throws {
        let host = FakeHost()
        let org = OrgInfo(id: "org_a", name: "A", plan: "pro")
        do {
            _ = try await AuditPlugin().handleRoute(get("audit", org, query: ["since": "yesterday"]), host.orgContext(org, for: AuditPlugin()))
            Issue.record("accepted")
        } catch let error as CommandError {
            #expect(error.code == "invalid_request" && error.message.contains("since"))
        }
    }
}
