import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import NIOCore
import SQLKit
import Synchronization
import Testing

extension PageBrowser {
    /// Posts a `multipart/form-data` form: `fields`, and `files` as (field, filename, text),
    /// with the CSRF token of `page` unless `csrf` is false.
    @discardableResult
    func postMultipart(_ path: String, _ fields: [String: String], files: [(String, String, String)], csrfFrom page: String? = nil,
                       csrf: Bool = true) async throws -> Answer {
        var fields = fields
        if csrf {
            let source = try await get(page ?? "/installs")
            let token: String = try #require(Self.csrf(in: source.text))
            fields["csrf_token"] = token
        }
        let boundary = "----mercato" + UUID().uuidString
        var body = ""
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n"
        }
        for (name, filename, text) in files {
            body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream\r\n\r\n\(text)\r\n"
        }
        body += "--\(boundary)--\r\n"
        return try await send(.post, path, body: body, contentType: "multipart/form-data; boundary=\(boundary)")
    }
}

/// The developer portal's app page (deliveries, command log, versions), registration from an
/// uploaded manifest, and the app page's settings and upgrade, on both engines: each form's
/// success, its problems, the role it needs (403), another org (404) and CSRF (403).
@Suite("Pages: developer portal deliveries, command log, uploads, versions; settings and upgrade")
struct PortalPagesTests {
    func json(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test(arguments: TestEngines.all)
    func deliveriesShowAttemptsRetryAndRecoverThroughTheDeliveryLog(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        let receiver = Receiver()
        try await receiver.serve { port in
            try await withApp(engine, clock: clock.wallClock, pages: true) { app in
                let clients = DeliveryClients(grace: .seconds(1))
                defer { Task { try? await clients.shutdown() } }
                let (vendorOrg, vendor) = try await app.makeOrg(plan: "enterprise", name: "Vendor")
                var m = manifest("hooked-app")
                m["events"] = ["app.installed", "install.config_updated"]
                m["webhook_url"] = "http://127.0.0.1:\(port)/hook"
                m["config"] = [["key": "channel", "label": "Channel", "type": "string"]]
                _ = try await app.registerApp(m, token: vendor)
                _ = try await app.call(.post, "/api/v1/developer/apps/hooked-app/publish", token: vendor)
                let (_, owner) = try await app.makeOrg(plan: "pro", name: "Customer")
                let installed = try await app.call(.post, "/api/v1/installs", token: owner, json: ["app": "hooked-app"])
                let installID = try #require(installed.json["id"] as? String)
                let deliveries = DeliveryService(database: app.runtime.database, registry: app.runtime.registry, clients: clients,
                                                 clock: clock.wallClock, logger: TestDatabase.logger, policy: DeliveryPolicy(),
                                                 addressGuard: AddressGuard(allowPrivate: true))
                let dev = try await app.signedIn(org: vendorOrg, role: "developer", by: vendor, email: "dev@vendor.example")
                let page = "/developer/apps/hooked-app"

                // Before anything was sent: the empty state.
                #expect(try await dev.get(page).text.contains("No deliveries yet."))

                receiver.script.withLock { $0 = [(500, nil)] }
                #expect(try await deliveries.fanOut() >= 1)
                #expect(try await deliveries.deliverDue() == 1)
                let id = try #require(receiver.received.withLock { $0.first?.id })

                let listed = try await dev.get(page)
                #expect(listed.status == .ok)
                #expect(listed.text.contains("<code>app.installed</code>") && listed.text.contains(">pending</span>"))
                #expect(listed.text.contains("href=\"/developer/apps/hooked-app/deliveries/\(id)\""))
                #expect(listed.text.contains("aria-label=\"Retry \(id)\""))
                // The status filter goes through the service's filter.
                #expect(try await dev.get(page + "?status=failed").text.contains("No failed deliveries."))
                #expect(try await dev.get(page + "?status=pending").text.contains(id))
                #expect(try await dev.get(page + "?status=odd").status == .unprocessableContent)

                // One delivery: every attempt with its time, status code, duration and answer.
                let detail = try await dev.get("\(page)/deliveries/\(id)")
                #expect(detail.status == .ok)
                #expect(detail.text.contains(">500</span>") && detail.text.contains(" ms</td>"))
                #expect(detail.text.contains("{&quot;answer&quot;:500}"))
                #expect(try await dev.get("\(page)/deliveries/msg_00000000000000000000000000").status == .notFound)

                // Retry: due now, sent again with the same webhook-id.
                let retried = try await dev.post("\(page)/deliveries/\(id)/retry", [:], csrfFrom: page)
                #expect(retried.status == .seeOther)
                #expect(retried.headers[.location] == "\(page)/deliveries/\(id)?done=retried")
                #expect(try await deliveries.deliverDue() == 1)
                #expect(receiver.received.withLock { $0.map(\.id) } == [id, id])
                let after = try await dev.get("\(page)/deliveries/\(id)?done=retried")
                #expect(after.text.contains("id=\"delivery-status\">delivered</span>") && after.text.contains(">200</span>"))
                #expect(after.text.contains("The delivery is queued"))

                // Recover failed since a time: a bad time is shown beside the field; a good one re-queues.
                try await app.runtime.database.transaction { db in
                    try await db.raw("UPDATE webhook_deliveries SET status = 'failed'").run()
                }
                let bad = try await dev.post("\(page)/recover", ["since": "yesterday"], csrfFrom: page)
                #expect(bad.status == .unprocessableContent && bad.text.contains("id=\"recover-since-error\""))
                let since = String(Date(timeIntervalSinceNow: -3600).ISO8601Format().prefix(16))   // what datetime-local sends
                let recovered = try await dev.post("\(page)/recover", ["since": since], csrfFrom: page)
                #expect(recovered.status == .seeOther)
                #expect(recovered.headers[.location]?.contains("done=recovered&count=1") == true)
                #expect(try await dev.get(recovered.headers[.location]!).text.contains("1 failed delivery is queued again."))
                let status = try await app.runtime.database.read { db in
                    try await db.raw("SELECT status FROM webhook_deliveries").first()!.decode(column: "status", as: String.self)
                }
                #expect(status == "pending")

                // Without the CSRF token nothing happens.
                try await app.runtime.database.transaction { db in try await db.raw("UPDATE webhook_deliveries SET status = 'failed'").run() }
                #expect(try await dev.post("\(page)/recover", ["since": since], csrf: false).status == .forbidden)
                #expect(try await dev.post("\(page)/deliveries/\(id)/retry", [:], csrf: false).status == .forbidden)
                let unchanged = try await app.runtime.database.read { db in
                    try await db.raw("SELECT status FROM webhook_deliveries").first()!.decode(column: "status", as: String.self)
                }
                #expect(unchanged == "failed")

                // A member of the developer org: 403; another org's developer: 404 everywhere.
                let member = try await app.signedIn(org: vendorOrg, role: "member", by: vendor, email: "mem@vendor.example")
                #expect(try await member.get(page).status == .forbidden)
                #expect(try await member.post("\(page)/deliveries/\(id)/retry", [:], csrfFrom: "/installs").status == .forbidden)
                #expect(try await member.post("\(page)/recover", ["since": since], csrfFrom: "/installs").status == .forbidden)
                #expect(try await dev.post("\(page)/deliveries/msg_00000000000000000000000000/retry", [:], csrfFrom: page).status == .notFound)
                let (otherOrg, otherOwner) = try await app.makeOrg(name: "Other")
                let stranger = try await app.signedIn(org: otherOrg, role: "developer", by: otherOwner, email: "x@other.example")
                #expect(try await stranger.get(page).status == .notFound)
                #expect(try await stranger.get("\(page)/deliveries/\(id)").status == .notFound)
                #expect(try await stranger.post("\(page)/deliveries/\(id)/retry", [:], csrfFrom: "/developer").status == .notFound)
                #expect(try await stranger.post("\(page)/recover", ["since": since], csrfFrom: "/developer").status == .notFound)
                #expect(try await app.runtime.database.read { db in
                    try await db.raw("SELECT status FROM webhook_deliveries").first()!.decode(column: "status", as: String.self)
                } == "failed")

                // Pages of 20: 24 deliveries make a second page, reached by the Older link.
                for n in 0 ..< 23 {
                    _ = try await app.call(.patch, "/api/v1/installs/\(installID)/config", token: owner, json: ["channel": "#c\(n)"])
                }
                #expect(try await deliveries.fanOut() >= 23)
                let first = try await dev.get(page)
                let older = try #require(first.text.range(of: #"href="(/developer/apps/hooked-app\?cursor=[^"]+)">Older deliveries"#, options: .regularExpression)
                    .map { String(first.text[$0]).dropFirst(6).prefix { $0 != "\"" } })
                let second = try await dev.get(String(older).replacingOccurrences(of: "&amp;", with: "&"))
                #expect(second.status == .ok)
                #expect(second.text.components(separatedBy: "aria-label=\"Retry ").count - 1 == 4)
                #expect(second.text.contains(">Newest</a>") && !second.text.contains("Older deliveries"))
            }
        }
    }

    @Test(arguments: TestEngines.all)
    func commandLogFiltersByInstallOutcomeAndCommand(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: GatewayTests.plugins, pages: true) { app in
            let (vendorOrg, vendor) = try await app.makeOrg(plan: "enterprise", name: "Vendor")
            var m = manifest("logged-app")
            m["scopes"] = ["install:read"]
            m["config"] = []
            let secret = try #require((try await app.registerApp(m, token: vendor)["secrets"] as? [String: String])?["command"])
            _ = try await app.call(.post, "/api/v1/developer/apps/logged-app/publish", token: vendor)
            var installs: [String] = []
            for name in ["One", "Two"] {
                let (_, owner) = try await app.makeOrg(plan: "pro", name: name)
                installs.append(try #require(try await app.call(.post, "/api/v1/installs", token: owner, json: ["app": "logged-app"]).json["id"] as? String))
            }
            for (install, command) in [(installs[0], "ping"), (installs[0], "install.info"), (installs[1], "ping"), (installs[1], "no.such")] {
                let sender = CommandSender(installID: install, appKey: "logged-app", secret: secret, adminToken: "", vendorToken: vendor)
                let (h, b) = try sender.sign(["install_id": install, "command": command, "args": [:]])
                _ = try await app.send(h, b)
            }
            let dev = try await app.signedIn(org: vendorOrg, role: "developer", by: vendor, email: "dev@vendor.example")
            let page = "/developer/apps/logged-app"
            func rows(_ query: String) async throws -> Int {
                let text = try await dev.get(page + query).text
                guard let table = text.range(of: "id=\"command-log\"") else { return 0 }
                return text[table.upperBound...].components(separatedBy: "<tr><td>").count - 1
            }
            #expect(try await rows("") == 4)
            #expect(try await rows("?install=\(installs[0])") == 2)
            #expect(try await rows("?command=ping") == 2)
            #expect(try await rows("?outcome=unknown_command") == 1)
            #expect(try await rows("?install=\(installs[1])&outcome=succeeded") == 1)
            let none = try await dev.get(page + "?command=kv.set")
            #expect(none.text.contains("No commands match these filters."))
            // Each filter form keeps the other list's filters.
            let kept = try await dev.get(page + "?status=failed&command=ping")
            #expect(kept.text.contains("<input type=\"hidden\" name=\"status\" value=\"failed\">"))
            #expect(kept.text.contains("<input type=\"hidden\" name=\"command\" value=\"ping\">"))
        }
    }

    @Test(arguments: TestEngines.all)
    func registerFromAnUploadedManifestFileOrPastedTextWithProblemsBesideTheirFields(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            let dev = try await app.signedIn(org: org, role: "developer", by: owner, email: "dev@example.com")
            let new = "/developer/apps/new"
            let form = try await dev.get(new)
            #expect(form.text.contains("enctype=\"multipart/form-data\"") && form.text.contains("<input type=\"file\" id=\"manifest_file\""))

            // A JSON file.
            let made = try await dev.postMultipart(new, ["manifest": ""], files: [("manifest_file", "app.json", try json(manifest("uploaded-app")))])
            #expect(made.status == .ok, "\(made.text)")
            #expect(made.text.contains("Uploaded-App is registered") && made.text.contains("whsec_"))
            // A YAML file (the name says so).
            let yaml = "key: yaml-app\nname: Yaml App\nversion: 1.0.0\ndescription: From YAML.\ndeveloper: {name: Ada}\ncategories: [productivity]\n"
                + "plan: free\nscopes: [kv:read]\nevents: []\ncommand_signing: {type: hmac}\nconfig: []\n"
            #expect(try await dev.postMultipart(new, [:], files: [("manifest_file", "manifest.yaml", yaml)]).status == .ok)
            let apps = try await app.call(.get, "/api/v1/developer/apps", token: owner).json["data"] as? [[String: Any]]
            #expect(Set(apps?.compactMap { $0["key"] as? String } ?? []) == ["uploaded-app", "yaml-app"])

            // A file with mistakes: every problem listed with its field, its text kept (escaped) to fix.
            var bad = manifest("Bad <Key>")
            bad["version"] = "one"
            let refused = try await dev.postMultipart(new, [:], files: [("manifest_file", "bad.json", try json(bad))])
            #expect(refused.status == .unprocessableContent)
            #expect(refused.text.contains("<code>key</code>") && refused.text.contains("<code>version</code>"))
            #expect(refused.text.contains("Bad &lt;Key&gt;") && !refused.text.contains("Bad <Key>"))
            // Not JSON at all; too large; nothing sent: each said beside the right field.
            let broken = try await dev.postMultipart(new, [:], files: [("manifest_file", "broken.json", "{\"key\": ")])
            #expect(broken.status == .badRequest && broken.text.contains("not valid JSON"))
            let large = try await dev.postMultipart(new, [:], files: [("manifest_file", "big.json", String(repeating: " ", count: 300 * 1024))])
            #expect(large.status == .contentTooLarge && large.text.contains("id=\"manifest_file-error\"") && large.text.contains("larger than 256 KiB"))
            // Past the upload limit of every page (1 MiB) the body is not read: a 413 page.
            let huge = try await dev.postMultipart(new, [:], files: [("manifest_file", "huge.json", String(repeating: " ", count: 1_100_000))])
            #expect(huge.status == .contentTooLarge && huge.headers[.contentType] == "text/html; charset=utf-8", "\(huge.status) \(huge.text.prefix(300))")
            #expect(try await dev.post(new, ["manifest": String(repeating: "a", count: 300 * 1024)], csrfFrom: new).status == .contentTooLarge)
            let empty = try await dev.postMultipart(new, ["manifest": "  "], files: [])
            #expect(empty.status == .unprocessableContent && empty.text.contains("paste the manifest or choose its file"))
            // Pasted text still works (urlencoded and multipart).
            #expect(try await dev.post(new, ["manifest": try json(manifest("pasted-app"))], csrfFrom: new).status == .ok)
            #expect(try await dev.postMultipart(new, ["manifest": try json(manifest("pasted-two"))], files: []).status == .ok)

            // Without the CSRF token (multipart too): 403, nothing registered. A member: 403.
            #expect(try await dev.postMultipart(new, [:], files: [("manifest_file", "app.json", try json(manifest("forged-app")))], csrf: false).status == .forbidden)
            let member = try await app.signedIn(org: org, role: "member", by: owner, email: "mem@example.com")
            #expect(try await member.postMultipart(new, [:], files: [("manifest_file", "app.json", try json(manifest("member-app")))], csrfFrom: "/installs").status == .forbidden)
            #expect(try await app.call(.get, "/api/v1/developer/apps/forged-app", token: owner).status == .notFound)
            #expect(try await app.call(.get, "/api/v1/developer/apps/member-app", token: owner).status == .notFound)
        }
    }

    @Test(arguments: TestEngines.all)
    func aNewVersionFromTheAppPageMustGrowAndKeepsToItsOrg(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            _ = try await app.registerApp(manifest("versioned-app"), token: owner)
            let dev = try await app.signedIn(org: org, role: "developer", by: owner, email: "dev@example.com")
            let page = "/developer/apps/versioned-app"
            #expect(try await dev.get(page).text.contains("Add a version"))

            let same = try await dev.postMultipart(page + "/versions", [:], files: [("manifest_file", "m.json", try json(manifest("versioned-app")))])
            #expect(same.status == .conflict && same.text.contains("is not greater than the latest version 1.0.0"))
            let otherKey = try await dev.postMultipart(page + "/versions", ["manifest": try json(manifest("another-key", version: "2.0.0"))], files: [])
            #expect(otherKey.status == .unprocessableContent && otherKey.text.contains("<code>key</code>"))

            let grown = try await dev.postMultipart(page + "/versions", [:], files: [("manifest_file", "m.json", try json(manifest("versioned-app", version: "1.1.0")))])
            #expect(grown.status == .seeOther && grown.headers[.location] == page + "?done=version")
            let shown = try await dev.get(page + "?done=version")
            #expect(shown.text.contains("<li>1.1.0 <span class=\"badge badge-ok\">latest</span></li>") && shown.text.contains("<li>1.0.0</li>"))
            #expect(shown.text.contains("version 1.1.0"))

            // CSRF, role and org.
            let next = try json(manifest("versioned-app", version: "1.2.0"))
            #expect(try await dev.postMultipart(page + "/versions", ["manifest": next], files: [], csrf: false).status == .forbidden)
            let member = try await app.signedIn(org: org, role: "member", by: owner, email: "mem@example.com")
            #expect(try await member.postMultipart(page + "/versions", ["manifest": next], files: [], csrfFrom: "/installs").status == .forbidden)
            let (otherOrg, otherOwner) = try await app.makeOrg(name: "Other")
            let stranger = try await app.signedIn(org: otherOrg, role: "developer", by: otherOwner, email: "x@example.com")
            #expect(try await stranger.postMultipart(page + "/versions", ["manifest": next], files: [], csrfFrom: "/developer").status == .notFound)
            #expect(!(try await dev.get(page)).text.contains("1.2.0"))
        }
    }

    @Test(arguments: TestEngines.all)
    func settingsAndUpgradeWithScopeConsentGoThroughTheInstallService(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let f = try await app.installFixture(apps: [configuredManifest("acme-crm")])
            let admin = try await app.signedIn(org: f.org, role: "admin", by: f.owner, email: "admin@example.com")
            let member = try await app.signedIn(org: f.org, role: "member", by: f.owner, email: "member@example.com")
            let page = "/marketplace/acme-crm"
            #expect(try await admin.post(page + "/install", ["config.api_key": "sk_TOPSECRET", "config.channel": "#ops"], csrfFrom: page).status == .seeOther)
            let installID = try #require((try await app.call(.get, "/api/v1/installs", token: f.owner).json["data"] as? [[String: Any]])?.first?["id"] as? String)
            #expect(!(try await admin.get(page)).text.contains("is available"))

            // Settings: CSRF and another org.
            #expect(try await admin.post(page + "/config", ["config.channel": "#forged"], csrf: false).status == .forbidden)
            let (otherOrg, otherOwner) = try await app.makeOrg(plan: "pro", name: "Elsewhere")
            let outsider = try await app.signedIn(org: otherOrg, role: "admin", by: otherOwner, email: "out@example.com")
            #expect(try await outsider.post(page + "/config", ["config.channel": "#outside"], csrfFrom: "/installs").status == .notFound)
            #expect(try await app.call(.get, "/api/v1/installs/\(installID)", token: f.owner).json["config"].flatMap { ($0 as? [String: Any])?["channel"] as? String } == "#ops")

            // Version 2 adds a scope and a required setting.
            let vendor = try await app.makeToken(org: try await vendorOrg(app, key: "acme-crm"), role: "developer", by: app.operatorToken)
            var v2 = configuredManifest("acme-crm", version: "2.0.0", scopes: ["kv:read", "kv:write"],
                                        extraFields: [["key": "team", "label": "Team name", "type": "string", "required": true]])
            v2["name"] = "Acme CRM"
            #expect(try await app.call(.put, "/api/v1/developer/apps/acme-crm", token: vendor, json: v2).status == .ok)
            let offer = try await admin.get(page)
            #expect(offer.text.contains("Version 2.0.0 is available") && offer.text.contains("id=\"upgrade-scopes\""))
            #expect(offer.text.contains("<code class=\"muted\">kv:write</code>") && !offer.text.contains("<code class=\"muted\">kv:read</code><input"))
            #expect(offer.text.contains("<label for=\"upgrade-config-team\">Team name"))
            #expect(!(try await member.get(page)).text.contains("is available"))

            // No consent: 409 on the page, the box flagged, still version 1.
            let refused = try await admin.post(page + "/upgrade", ["version": "2.0.0", "accept_scopes": "kv:write", "config.team": "north"], csrfFrom: page)
            #expect(refused.status == .conflict)
            #expect(refused.text.contains("id=\"upgrade-confirm-error\"") && refused.text.contains("value=\"north\""))
            // A missing new setting: beside its field.
            let missing = try await admin.post(page + "/upgrade", ["version": "2.0.0", "accept_scopes": "kv:write", "confirm_scopes": "on"], csrfFrom: page)
            #expect(missing.status == .unprocessableContent && missing.text.contains("id=\"upgrade-config-team-error\""))
            // Member 403, CSRF 403, another org 404: all still version 1.
            let consent = ["version": "2.0.0", "accept_scopes": "kv:write", "confirm_scopes": "on", "config.team": "north"]
            #expect(try await member.post(page + "/upgrade", consent, csrfFrom: page).status == .forbidden)
            #expect(try await admin.post(page + "/upgrade", consent, csrf: false).status == .forbidden)
            #expect(try await outsider.post(page + "/upgrade", consent, csrfFrom: "/installs").status == .notFound)
            #expect(try await app.call(.get, "/api/v1/installs/\(installID)", token: f.owner).json["version"] as? String == "1.0.0")

            let upgraded = try await admin.post(page + "/upgrade", consent, csrfFrom: page)
            #expect(upgraded.status == .seeOther && upgraded.headers[.location] == page + "?done=upgraded")
            let view = try await app.call(.get, "/api/v1/installs/\(installID)", token: f.owner).json
            #expect(view["version"] as? String == "2.0.0")
            #expect((view["scopes"] as? [String])?.contains("kv:write") == true)
            #expect((view["config"] as? [String: Any])?["team"] as? String == "north")
            #expect((view["config"] as? [String: Any])?["channel"] as? String == "#ops")
            let after = try await admin.get(page + "?done=upgraded")
            #expect(after.text.contains("The app is upgraded") && !after.text.contains("is available"))
            #expect(!after.text.contains("sk_TOPSECRET"))
        }
    }

    /// Every page that shows what a developer wrote (name, description, config labels and help,
    /// in the install and settings forms, the upgrade offer, the portal, the delivery page, the
    /// installs list) shows it as text: no markup from the manifest reaches the page.
    @Test(arguments: TestEngines.all)
    func everyPageShowingManifestTextEscapesIt(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (vendorOrg, vendor) = try await app.makeOrg(plan: "enterprise", name: "Vendor")
            let name = "<script>alert('name')</script>"
            var evil = manifest("evil-app", name: name, description: "<img src=x onerror=alert(1)> nice")
            evil["events"] = ["app.installed"]
            evil["config"] = [["key": "api_key", "label": "<b>Key</b>", "type": "secret", "required": true, "help": "<script>help()</script>"],
                              ["key": "mode", "label": "<i>Mode</i>", "type": "enum", "options": ["<a>", "b"], "help": "<svg onload=alert(4)>"]]
            _ = try await app.registerApp(evil, token: vendor)
            #expect(try await app.call(.post, "/api/v1/developer/apps/evil-app/publish", token: vendor).status == .ok)
            let (org, owner) = try await app.makeOrg(plan: "enterprise", name: "Customer")
            let admin = try await app.signedIn(org: org, role: "admin", by: owner, email: "al@example.com")
            #expect(try await admin.post("/marketplace/evil-app/install", ["config.api_key": "k", "config.mode": "<a>"], csrfFrom: "/marketplace/evil-app").status == .seeOther)
            // Version 2 adds a setting whose label and help hold markup: shown in the upgrade offer.
            var v2 = evil
            v2["version"] = "2.0.0"
            v2["config"] = (evil["config"] as! [[String: Any]]) + [["key": "extra", "label": "<u>Extra</u>", "type": "string", "help": "<iframe src=x>"]]
            #expect(try await app.call(.put, "/api/v1/developer/apps/evil-app", token: vendor, json: v2).status == .ok)
            let clients = DeliveryClients(grace: .seconds(1))
            defer { Task { try? await clients.shutdown() } }
            let deliveries = DeliveryService(database: app.runtime.database, registry: app.runtime.registry, clients: clients,
                                             clock: app.runtime.clock, logger: TestDatabase.logger, policy: DeliveryPolicy(),
                                             addressGuard: AddressGuard(allowPrivate: true))
            #expect(try await deliveries.fanOut() >= 1)
            let dev = try await app.signedIn(org: vendorOrg, role: "developer", by: vendor, email: "dev@vendor.example")
            let delivery = try #require(try await app.call(.get, "/api/v1/developer/apps/evil-app/deliveries", token: vendor).json["data"]
                .flatMap { ($0 as? [[String: Any]])?.first?["id"] as? String })

            let marked = ["<script>alert", "<script>help", "<img src=x", "<b>Key", "<i>Mode", "<svg onload", "<u>Extra", "<iframe src=x", "<a>"]
            var pages: [(PageBrowser, String, [String])] = [
                (admin, "/marketplace", ["&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt; nice"]),
                (admin, "/marketplace/evil-app", ["&lt;b&gt;Key&lt;/b&gt;", "&lt;script&gt;help()&lt;/script&gt;", "&lt;i&gt;Mode&lt;/i&gt;",
                                                  "&lt;svg onload=alert(4)&gt;", "&lt;u&gt;Extra&lt;/u&gt;", "&lt;iframe src=x&gt;", "value=\"&lt;a&gt;\""]),
                (admin, "/installs", ["&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"]),
                (dev, "/developer", ["&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"]),
                (dev, "/developer/apps/evil-app", ["&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"]),
                (dev, "/developer/apps/evil-app/deliveries/\(delivery)", ["&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"]),
            ]
            // A refused new version keeps its text in the form, escaped.
            var worse = v2
            worse["version"] = "1.0.0"
            let refused = try await dev.postMultipart("/developer/apps/evil-app/versions", [:], files: [("manifest_file", "m.json", try json(worse))],
                                                      csrfFrom: "/developer")
            #expect(refused.status == .conflict)
            pages.append((dev, "", ["&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"]))
            for (browser, path, escaped) in pages {
                let page = path.isEmpty ? refused : try await browser.get(path)
                #expect(path.isEmpty || page.status == .ok, "\(path)")
                for text in marked { #expect(!page.text.contains(text), "\(path) shows \(text) as markup") }
                for text in escaped { #expect(page.text.contains(text), "\(path) lacks \(text)") }
                #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            }
        }
    }

    func vendorOrg(_ app: AppHarness, key: String) async throws -> String {
        try await app.runtime.database.read { db in try #require(try await AppStore.find(key: key, on: db)).developerOrgId }
    }
}
