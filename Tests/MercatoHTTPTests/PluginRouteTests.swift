import Foundation
import HTTPTypes
import HummingbirdTesting
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

@Suite("Plugin routes: the notifications inbox and the audit trail; uninstall leaves no plugin rows")
struct PluginRouteTests {
    @Test(arguments: TestEngines.all)
    func notificationsInboxAndUninstallLeavesNoPluginRows(engine: StorageEngine) async throws {
        try await withApp(engine, plugins: GatewayTests.plugins) { app in
            let s = try await app.commandSender(scopes: ["notifications:write", "kv:write", "tasks:write"])
            func run(_ command: String, _ args: [String: Any]) async throws -> Answer {
                let (h, b) = try s.sign(["install_id": s.installID, "command": command, "args": args])
                return try await app.send(h, b)
            }
            let created = try await run("notifications.create", ["title": "Deal won", "body": "ACME signed.", "url": "https://crm.example/deals/1", "level": "success"])
            #expect(created.status == .ok, "\(created.text)")
            let id = try #require((created.json["result"] as? [String: Any])?["id"] as? String)
            expectProblem(try await run("notifications.create", ["title": "x", "level": "loud"]), .unprocessableContent, "invalid_args")
            _ = try await run("kv.set", ["key": "k", "value": 1])
            _ = try await run("tasks.create", ["title": "Follow up"])

            // Any member of the org reads the inbox and dismisses; another org sees nothing.
            let orgID = try #require(try await app.call(.get, "/api/v1/installs/\(s.installID)", token: s.adminToken).json["org_id"] as? String)
            let member = try await app.makeToken(org: orgID, role: "member", by: s.adminToken)
            let inbox = try await app.call(.get, "/api/v1/notifications", token: member)
            #expect(inbox.status == .ok, "\(inbox.text)")
            // The plugin's JSON as written: keys as the plugin named them, `/` not escaped.
            #expect(inbox.text.contains("\"url\":\"https://crm.example/deals/1\""), "\(inbox.text)")
            #expect(inbox.text.contains("\"dismissed_at\":null"), "\(inbox.text)")
            let first = try #require((inbox.json["data"] as? [[String: Any]])?.first)
            #expect(first["id"] as? String == id)
            #expect(first["title"] as? String == "Deal won")
            #expect(first["app"] as? String == s.appKey)
            let (_, stranger) = try await app.makeOrg(name: "Elsewhere")
            #expect((try await app.call(.get, "/api/v1/notifications", token: stranger).json["data"] as? [Any])?.isEmpty == true)
            expectProblem(try await app.call(.post, "/api/v1/notifications/\(id)/dismiss", token: stranger), .notFound, "not_found")
            expectProblem(try await app.call(.get, "/api/v1/notifications?status=maybe", token: member), .unprocessableContent, "invalid_request")
            expectProblem(try await app.call(.get, "/api/v1/notifications", token: app.operatorToken), .forbidden, "forbidden")
            expectProblem(try await app.call(.get, "/api/v1/notifications"), .unauthorized, "unauthenticated")
            let dismissed = try await app.call(.post, "/api/v1/notifications/\(id)/dismiss", token: member)
            #expect(dismissed.status == .ok, "\(dismissed.text)")
            #expect(dismissed.json["dismissed_at"] is String)
            #expect((try await app.call(.get, "/api/v1/notifications", token: member).json["data"] as? [Any])?.isEmpty == true)
            #expect((try await app.call(.get, "/api/v1/notifications?status=dismissed", token: member).json["data"] as? [Any])?.count == 1)

            // Uninstall: after the hooks ran, no KV, task or notification row of the install is left.
            func rows() async throws -> [String: Int] {
                try await app.runtime.database.read { db in
                    try await db.raw("SELECT plugin_id, COUNT(*) AS n FROM plugin_kv WHERE install_id = \(bind: s.installID) GROUP BY plugin_id").all()
                        .reduce(into: [:]) { $0[try $1.decode(column: "plugin_id", as: String.self)] = try $1.decode(column: "n", as: Int.self) }
                }
            }
            #expect(try await rows() == ["kv": 1, "tasks": 1, "notifications": 1])
            #expect(try await app.call(.delete, "/api/v1/installs/\(s.installID)", token: s.adminToken).status == .ok)
            while try await app.runtime.hooks.dispatchPending() > 0 {}
            #expect(try await rows() == [:])
            #expect((try await app.call(.get, "/api/v1/notifications?status=all", token: member).json["data"] as? [Any])?.isEmpty == true)
        }
    }

    @Test(arguments: TestEngines.all)
    func auditTrailForAdminsAndCSVForEnterprise(engine: StorageEngine) async throws {
        try await withApp(engine, plugins: GatewayTests.plugins) { app in
            let pro = try await app.commandSender(scopes: ["install:read"], key: "audited-app")
            _ = try await app.call(.patch, "/api/v1/installs/\(pro.installID)/config", token: pro.adminToken, json: ["token": "new-secret-value"])
            while try await app.runtime.hooks.dispatchPending() > 0 {}

            let trail = try await app.call(.get, "/api/v1/audit", token: pro.adminToken)
            #expect(trail.status == .ok, "\(trail.text)")
            let rows = try #require(trail.json["data"] as? [[String: Any]])
            let actions = rows.compactMap { $0["action"] as? String }
            #expect(actions == ["install.config_updated", "app.installed", "token.created", "org.created"], "\(actions)")
            #expect(rows.first?["target"] as? String == pro.installID)
            #expect(rows.first?["request_id"] is String)
            #expect(!trail.text.contains("new-secret-value") && !trail.text.contains("tok-secret-value"))
            let filtered = try await app.call(.get, "/api/v1/audit?action=app.installed", token: pro.adminToken)
            #expect((filtered.json["data"] as? [Any])?.count == 1)
            expectProblem(try await app.call(.get, "/api/v1/audit?since=yesterday", token: pro.adminToken), .unprocessableContent, "invalid_request")

            // Below admin: 403. On pro: no export.
            let orgID = try #require(try await app.call(.get, "/api/v1/installs/\(pro.installID)", token: pro.adminToken).json["org_id"] as? String)
            let member = try await app.makeToken(org: orgID, role: "member", by: pro.adminToken)
            expectProblem(try await app.call(.get, "/api/v1/audit", token: member), .forbidden, "forbidden")
            expectProblem(try await app.call(.get, "/api/v1/audit/export", token: pro.adminToken), .forbidden, "plan_required")

            // The developer org's trail has its own actions.
            let vendorTrail = try await app.call(.get, "/api/v1/audit", token: pro.vendorToken)
            #expect((vendorTrail.json["data"] as? [[String: Any]])?.compactMap { $0["action"] as? String }.contains("app.published") == true)

            let ent = try await app.commandSender(scopes: ["install:read"], key: "audited-app-2", customerPlan: "enterprise")
            while try await app.runtime.hooks.dispatchPending() > 0 {}
            let csv = try await app.call(.get, "/api/v1/audit/export", token: ent.adminToken)
            #expect(csv.status == .ok, "\(csv.text)")
            #expect(csv.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(csv.headers[.contentDisposition]?.hasPrefix("attachment; filename=\"audit-org_") == true)
            let lines = csv.text.split(separator: "\r\n")
            #expect(lines.first == "id,occurred_at,actor,action,target,request_id,details")
            #expect(lines.count == 4, "\(lines)")     // header, app.installed, token.created, org.created
            #expect(lines[1].contains(",app.installed,\(ent.installID),"))
        }
    }
}
