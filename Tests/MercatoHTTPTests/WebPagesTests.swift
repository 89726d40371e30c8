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
import Testing

/// A browser's view of the app in a test: cookies kept between calls, forms sent with the
/// page's CSRF token.
final class PageBrowser: @unchecked Sendable {
    let app: AppHarness
    var cookies: [String: String] = [:]

    init(_ app: AppHarness) { self.app = app }

    @discardableResult
    func get(_ path: String) async throws -> Answer {
        try await send(.get, path, body: nil)
    }

    /// Posts `fields` as a form; `csrf` nil sends the token of the last page read from `from`.
    @discardableResult
    func post(_ path: String, _ fields: [String: String], csrfFrom page: String? = nil, csrf: Bool = true) async throws -> Answer {
        var fields = fields
        if csrf {
            let source = try await get(page ?? "/login")
            let token: String = try #require(Self.csrf(in: source.text))
            fields["csrf_token"] = token
        }
        let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        return try await send(.post, path, body: body)
    }

    func send(_ method: HTTPRequest.Method, _ path: String, body: String?, contentType: String = "application/x-www-form-urlencoded") async throws -> Answer {
        var headers: HTTPFields = [:]
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        if body != nil { headers[.contentType] = contentType }
        let answer = try await app.call(method, path, raw: body, contentType: nil, headers: headers)
        for line in answer.headers[values: .setCookie] {
            let pair = line.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            let name = String(pair[0])
            let value = pair.count > 1 ? String(pair[1]) : ""
            if value.isEmpty || line.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
        }
        return answer
    }

    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf_token" value="([0-9a-f]+)""#, options: .regularExpression) else { return nil }
        return String(html[range].dropFirst(#"name="csrf_token" value=""#.count).dropLast())
    }
}

extension AppHarness {
    /// An invitation link made through the API.
    func invite(org: String, email: String, role: String, by token: String) async throws -> String {
        let answer = try await call(.post, "/api/v1/orgs/\(org)/invitations", token: token, json: ["email": email, "role": role])
        #expect(answer.status == .created, "\(answer.text)")
        return try #require(answer.json["url"] as? String)
    }

    /// A signed-in browser for a new person with `role` in `org`.
    func signedIn(org: String, role: String, by token: String, email: String) async throws -> PageBrowser {
        let url = try await invite(org: org, email: email, role: role, by: token)
        let path = String(url.dropFirst(runtime.settings.publicURL.count))
        let browser = PageBrowser(self)
        let joined = try await browser.post(path, ["name": "Person \(role)", "password": "correct horse battery"], csrfFrom: path)
        #expect(joined.status == .seeOther)
        return browser
    }
}

@Suite("Pages: people, sessions, CSRF, headers, escaping")
struct WebPagesTests {
    @Test(arguments: TestEngines.all)
    func invitationRulesOverTheAPI(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            let (_, otherOwner) = try await app.makeOrg(name: "Other")
            let admin = try await app.makeToken(org: org, role: "admin", by: owner)
            let member = try await app.makeToken(org: org, role: "member", by: owner)
            let made = try await app.call(.post, "/api/v1/orgs/\(org)/invitations", token: owner, json: ["email": "Ada@Example.com", "role": "admin"])
            #expect(made.status == .created)
            #expect((made.json["id"] as? String)?.hasPrefix("inv_") == true)
            #expect((made.json["url"] as? String)?.hasPrefix(app.runtime.settings.publicURL + "/invite/") == true)
            expectProblem(try await app.call(.post, "/api/v1/orgs/\(org)/invitations", token: admin, json: ["email": "b@example.com", "role": "owner"]),
                          .forbidden, "forbidden")
            #expect(try await app.call(.post, "/api/v1/orgs/\(org)/invitations", token: admin, json: ["email": "b@example.com", "role": "admin"]).status == .created)
            expectProblem(try await app.call(.post, "/api/v1/orgs/\(org)/invitations", token: member, json: ["email": "c@example.com", "role": "member"]),
                          .forbidden, "forbidden")
            expectProblem(try await app.call(.post, "/api/v1/orgs/\(org)/invitations", token: otherOwner, json: ["email": "d@example.com", "role": "member"]),
                          .notFound, "not_found")
            expectProblem(try await app.call(.post, "/api/v1/orgs/\(org)/invitations", token: owner, json: ["email": "nope", "role": "member"]),
                          .unprocessableContent, "invalid_request")
            // Only the digest of the link's token is stored.
            let token = String((made.json["url"] as! String).split(separator: "/").last!)
            let stored = try await app.runtime.database.read { db in
                try await db.raw("SELECT token_hash FROM invitations").all().map { try $0.decode(column: "token_hash", as: String.self) }
            }
            #expect(!stored.isEmpty && !stored.contains(token))
        }
    }

    @Test(arguments: TestEngines.all)
    func invitationPageCreatesAPersonOnceWithArgon2idAndASession(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            let url = try await app.invite(org: org, email: "ada@example.com", role: "admin", by: owner)
            let path = String(url.dropFirst(app.runtime.settings.publicURL.count))
            let browser = PageBrowser(app)
            let page = try await browser.get(path)
            #expect(page.status == .ok)
            #expect(page.text.contains("<label for=\"password\">Password</label>"))

            // A POST without the CSRF token is a 403 page and uses nothing.
            let forged = try await browser.post(path, ["name": "Ada", "password": "correct horse battery"], csrf: false)
            #expect(forged.status == .forbidden)
            #expect(forged.headers[.contentType] == "text/html; charset=utf-8")
            #expect(try await browser.get(path).status == .ok)
            let people = try await app.runtime.database.read { try await $0.raw("SELECT COUNT(*) AS n FROM user_credentials").first()!.decode(column: "n", as: Int.self) }
            #expect(people == 0)

            // A short password is shown beside its field.
            let short = try await browser.post(path, ["name": "Ada", "password": "short"], csrfFrom: path)
            #expect(short.status == .unprocessableContent)
            #expect(short.text.contains("id=\"password-error\""))

            let joined = try await browser.post(path, ["name": "Ada", "password": "correct horse battery"], csrfFrom: path)
            #expect(joined.status == .seeOther)
            let cookie = try #require(joined.headers[values: .setCookie].first { $0.hasPrefix("mercato_session=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"))
            let market = try await browser.get("/marketplace")
            #expect(market.status == .ok)
            #expect(market.text.contains("Ada"))

            // Argon2id at rest; the session cookie only as a digest.
            let (hash, sessions) = try await app.runtime.database.read { db in
                (try await db.raw("SELECT password_hash FROM user_credentials").first()!.decode(column: "password_hash", as: String.self),
                 try await db.raw("SELECT token_hash FROM web_sessions").all().map { try $0.decode(column: "token_hash", as: String.self) })
            }
            #expect(hash.hasPrefix("$argon2id$"))
            #expect(!sessions.contains(browser.cookies["mercato_session"] ?? "?"))

            // The link is single use.
            #expect(try await PageBrowser(app).get(path).status == .notFound)
        }
    }

    @Test(arguments: TestEngines.all)
    func signInSaysNothingAboutWhichPartWasWrongAndThrottles(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            _ = try await app.signedIn(org: org, role: "member", by: owner, email: "bo@example.com")
            let browser = PageBrowser(app)
            let wrong = try await browser.post("/login", ["email": "bo@example.com", "password": "not the password"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.text.contains("That email and password do not match an account."))
            let unknown = try await browser.post("/login", ["email": "nobody@example.com", "password": "not the password"])
            #expect(unknown.text.contains("That email and password do not match an account."))
            #expect(browser.cookies["mercato_session"] == nil)

            let good = try await browser.post("/login", ["email": "bo@example.com", "password": "correct horse battery", "return_to": "/installs"])
            #expect(good.status == .seeOther)
            #expect(good.headers[.location] == "/installs")
            #expect(try await browser.get("/installs").status == .ok)

            // Sign out ends the session on the server: the old cookie no longer works.
            let old = try #require(browser.cookies["mercato_session"])
            #expect(try await browser.post("/logout", [:], csrfFrom: "/installs").status == .seeOther)
            browser.cookies["mercato_session"] = old
            let after = try await browser.get("/installs")
            #expect(after.status == .seeOther)
            #expect(after.headers[.location]?.hasPrefix("/login") == true)

            // An open redirect is refused.
            let outside = try await browser.post("/login", ["email": "bo@example.com", "password": "correct horse battery", "return_to": "//evil.example/x"])
            #expect(outside.headers[.location] == "/marketplace")

            // Repeated failures for one email are throttled with a 429 page, even with the right password.
            let other = PageBrowser(app)
            for _ in 0 ..< 5 { _ = try await other.post("/login", ["email": "bo@example.com", "password": "wrong wrong wrong"]) }
            let throttled = try await other.post("/login", ["email": "bo@example.com", "password": "correct horse battery"])
            #expect(throttled.status == .tooManyRequests)
            #expect(throttled.headers[.retryAfter] != nil)
            #expect(throttled.text.contains("Too many"))
        }
    }

    @Test(arguments: TestEngines.all)
    func pagesCarryTheSecurityHeadersAndEscapeWhatDevelopersWrote(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (vendorOrg, vendor) = try await app.makeOrg(plan: "enterprise", name: "Vendor")
            _ = vendorOrg
            var evil = manifest("evil-app", name: "<script>alert('name')</script>", description: "<img src=x onerror=alert(1)> nice")
            evil["config"] = [["key": "api_key", "label": "<b>Key</b>", "type": "secret", "required": true, "help": "<script>help()</script>"]]
            _ = try await app.registerApp(evil, token: vendor)
            #expect(try await app.call(.post, "/api/v1/developer/apps/evil-app/publish", token: vendor).status == .ok)
            let (org, owner) = try await app.makeOrg(plan: "enterprise", name: "Customer")
            let browser = try await app.signedIn(org: org, role: "admin", by: owner, email: "al@example.com")

            for path in ["/marketplace", "/marketplace/evil-app"] {
                let page = try await browser.get(path)
                #expect(page.status == .ok)
                #expect(!page.text.contains("<script>alert"))
                #expect(!page.text.contains("<img src=x"))
                #expect(!page.text.contains("<script>help"))
                #expect(page.text.contains("&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"))
                let csp = try #require(page.headers[.contentSecurityPolicy])
                #expect(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'self'") && !csp.contains("unsafe-inline"))
                #expect(page.headers[.xContentTypeOptions] == "nosniff")
                #expect(page.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin")
            }
            #expect(try await browser.get("/marketplace/evil-app").text.contains("&lt;b&gt;Key&lt;/b&gt;"))
            // Not found and another org's draft are 404 pages in the layout.
            let (_, otherDev) = try await app.makeOrg(name: "Elsewhere")
            _ = try await app.registerApp(manifest("hidden-draft"), token: otherDev)
            let hidden = try await browser.get("/marketplace/hidden-draft")
            #expect(hidden.status == .notFound)
            #expect(hidden.text.contains("<link rel=\"stylesheet\" href=\"/static/mercato.css\">"))
        }
    }

    @Test(arguments: TestEngines.all)
    func installFormGoesThroughTheInstallRulesAndRoles(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let f = try await app.installFixture(apps: [configuredManifest("acme-crm")])
            let admin = try await app.signedIn(org: f.org, role: "admin", by: f.owner, email: "admin@example.com")
            let member = try await app.signedIn(org: f.org, role: "member", by: f.owner, email: "member@example.com")

            let page = try await admin.get("/marketplace/acme-crm")
            #expect(page.text.contains("<input type=\"password\" id=\"config-api-key\""))
            #expect(page.text.contains("<label for=\"config-region\">Region"))
            #expect(!(try await member.get("/marketplace/acme-crm")).text.contains("action=\"/marketplace/acme-crm/install\""))

            // A member's POST is refused by the same rule as the API; nothing is installed.
            let refused = try await member.post("/marketplace/acme-crm/install", ["config.api_key": "sk_1"], csrfFrom: "/marketplace/acme-crm")
            #expect(refused.status == .forbidden)
            // A field problem is shown beside the field, typed values kept, the secret not echoed.
            let bad = try await admin.post("/marketplace/acme-crm/install", ["config.api_key": "sk_TOPSECRET", "config.channel": "nope"],
                                           csrfFrom: "/marketplace/acme-crm")
            #expect(bad.status == .unprocessableContent)
            #expect(bad.text.contains("id=\"config-channel-error\""))
            #expect(bad.text.contains("value=\"nope\""))
            #expect(!bad.text.contains("sk_TOPSECRET"))
            #expect(try await app.call(.get, "/api/v1/installs", token: f.owner).json["data"].map { ($0 as? [Any])?.count } == 0)

            let done = try await admin.post("/marketplace/acme-crm/install",
                                            ["config.api_key": "sk_TOPSECRET", "config.channel": "#ops", "config.verbose": "on", "config.retries": "4"],
                                            csrfFrom: "/marketplace/acme-crm")
            #expect(done.status == .seeOther)
            let installed = try await admin.get("/marketplace/acme-crm?done=installed")
            #expect(installed.text.contains("Command log"))
            #expect(!installed.text.contains("sk_TOPSECRET"))
            let list = try await app.call(.get, "/api/v1/installs", token: f.owner)
            let item = try #require((list.json["data"] as? [[String: Any]])?.first)
            let config = try #require(item["config"] as? [String: Any])
            #expect(config["channel"] as? String == "#ops")
            #expect(config["verbose"] as? Bool == true)
            #expect(config["retries"] as? Double == 4)

            // Settings: filled with the values (the secret never), an empty secret keeps its value.
            #expect(installed.text.contains("value=\"#ops\""))
            let badSettings = try await admin.post("/marketplace/acme-crm/config", ["config.channel": "no good", "config.retries": "4"],
                                                   csrfFrom: "/marketplace/acme-crm")
            #expect(badSettings.status == .unprocessableContent && badSettings.text.contains("id=\"config-channel-error\""))
            #expect(try await admin.post("/marketplace/acme-crm/config", ["config.channel": "#sales", "config.retries": "5"],
                                         csrfFrom: "/marketplace/acme-crm").status == .seeOther)
            #expect(try await member.post("/marketplace/acme-crm/config", ["config.channel": "#x"], csrfFrom: "/marketplace/acme-crm").status == .forbidden)
            let saved = try await app.call(.get, "/api/v1/installs/\(item["id"] as! String)", token: f.owner).json["config"] as? [String: Any]
            #expect(saved?["channel"] as? String == "#sales" && saved?["retries"] as? Double == 5 && saved?["verbose"] as? Bool == false)
            #expect(saved?["api_key"] as? String == "********")
            #expect(try await app.runtime.installs.configInClear(item["id"] as! String)["api_key"] == .string("sk_TOPSECRET"))

            #expect(try await admin.post("/marketplace/acme-crm/disable", [:], csrfFrom: "/marketplace/acme-crm").status == .seeOther)
            #expect(try await app.call(.get, "/api/v1/installs/\(item["id"] as! String)", token: f.owner).json["status"] as? String == "disabled")
            #expect(try await admin.post("/marketplace/acme-crm/enable", [:], csrfFrom: "/marketplace/acme-crm").status == .seeOther)
            // Uninstall asks first; a member cannot.
            #expect(try await admin.get("/marketplace/acme-crm/uninstall").text.contains("Yes, uninstall"))
            #expect(try await member.post("/marketplace/acme-crm/uninstall", [:], csrfFrom: "/marketplace/acme-crm").status == .forbidden)
            #expect(try await admin.post("/marketplace/acme-crm/uninstall", [:], csrfFrom: "/marketplace/acme-crm").status == .seeOther)
            #expect(try await app.call(.get, "/api/v1/installs/\(item["id"] as! String)", token: f.owner).status == .notFound)
        }
    }

    @Test(arguments: TestEngines.all)
    func sessionsSlideWithUseEndAfterIdleOrTheirEndAndAreSwept(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        try await withApp(engine, clock: clock.wallClock, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            let browser = try await app.signedIn(org: org, role: "member", by: owner, email: "cy@example.com")
            // Used every 11 hours, the 12-hour idle limit keeps sliding: 44 hours later it still works.
            for _ in 0 ..< 4 {
                clock.advance(by: 11 * 3600)
                #expect(try await browser.get("/installs").status == .ok)
            }
            // Idle for 12 hours: signed out.
            clock.advance(by: 12 * 3600 + 1)
            #expect(try await browser.get("/installs").status == .seeOther)

            // However busy, a session ends 14 days after sign-in.
            let busy = try await app.signedIn(org: org, role: "member", by: owner, email: "di@example.com")
            for _ in 0 ..< 30 {
                clock.advance(by: 12 * 3600 - 60)
                _ = try await busy.get("/installs")
            }
            #expect(try await busy.get("/installs").status == .seeOther)

            // The retention sweep drops both rows.
            let service = RetentionService(database: app.runtime.database, clock: clock.wallClock, logger: app.logs.logger(),
                                           idempotencyHours: 48, commandLogDays: 30)
            try await service.sweep()
            let left = try await app.runtime.database.read { try await $0.raw("SELECT COUNT(*) AS n FROM web_sessions").first()!.decode(column: "n", as: Int.self) }
            #expect(left == 0)
        }
    }

    /// Behind an https public URL the cookies are `Secure`; listed host origins may frame the pages.
    @Test(arguments: TestEngines.all)
    func httpsPublicURLMakesCookiesSecureAndFrameAncestorsAreTheOperators(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true, environment: ["MERCATO_PUBLIC_URL": "https://market.example.com",
                                                               "MERCATO_FRAME_ANCESTORS": "https://app.example.com https://admin.example.com"]) { app in
            let (org, owner) = try await app.makeOrg()
            let url = try await app.invite(org: org, email: "ed@example.com", role: "member", by: owner)
            #expect(url.hasPrefix("https://market.example.com/invite/"))
            let path = String(url.dropFirst("https://market.example.com".count))
            let browser = PageBrowser(app)
            let page = try await browser.get(path)
            #expect(page.headers[values: .setCookie].allSatisfy { $0.contains("Secure") })
            #expect(page.headers[.contentSecurityPolicy]?.hasSuffix("frame-ancestors https://app.example.com https://admin.example.com") == true)
            let joined = try await browser.post(path, ["name": "Ed", "password": "correct horse battery"], csrfFrom: path)
            let cookie = try #require(joined.headers[values: .setCookie].first { $0.hasPrefix("mercato_session=") })
            #expect(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"))
        }
    }

    @Test(arguments: TestEngines.all)
    func developerPortalRegistersShowsSecretsOncePublishesAndKeepsToItsOrg(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            let dev = try await app.signedIn(org: org, role: "developer", by: owner, email: "dev@example.com")
            let member = try await app.signedIn(org: org, role: "member", by: owner, email: "mem@example.com")
            #expect(try await member.get("/developer").status == .forbidden)
            #expect(try await dev.get("/developer").text.contains("no apps yet"))

            var bad = manifest("<b>Bad Key</b>")
            bad["version"] = "one"
            let badText = String(decoding: try JSONSerialization.data(withJSONObject: bad), as: UTF8.self)
            let refused = try await dev.post("/developer/apps/new", ["manifest": badText], csrfFrom: "/developer/apps/new")
            #expect(refused.status == .unprocessableContent)
            #expect(refused.text.contains("<code>key</code>") && refused.text.contains("<code>version</code>"))
            #expect(!refused.text.contains("<b>Bad Key</b>"))

            let good = String(decoding: try JSONSerialization.data(withJSONObject: manifest("portal-app")), as: UTF8.self)
            let made = try await dev.post("/developer/apps/new", ["manifest": good], csrfFrom: "/developer/apps/new")
            #expect(made.status == .ok)
            let secret = try #require(made.text.range(of: #"whsec_[A-Za-z0-9+/=_-]+"#, options: .regularExpression).map { String(made.text[$0]) })
            let page = try await dev.get("/developer/apps/portal-app")
            #expect(page.status == .ok && !page.text.contains(secret))
            #expect(try await dev.post("/developer/apps/portal-app/publish", [:], csrfFrom: "/developer/apps/portal-app").status == .seeOther)
            #expect(try await app.call(.get, "/api/v1/developer/apps/portal-app", token: owner).json["status"] as? String == "published")
            // Without the CSRF token nothing changes.
            #expect(try await dev.post("/developer/apps/portal-app/unlist", [:], csrf: false).status == .forbidden)
            #expect(try await app.call(.get, "/api/v1/developer/apps/portal-app", token: owner).json["status"] as? String == "published")

            // Another org's developer sees a 404 page, and cannot publish or rotate it.
            let (otherOrg, otherOwner) = try await app.makeOrg(name: "Other")
            let stranger = try await app.signedIn(org: otherOrg, role: "developer", by: otherOwner, email: "x@example.com")
            #expect(try await stranger.get("/developer/apps/portal-app").status == .notFound)
            #expect(try await stranger.post("/developer/apps/portal-app/rotate/command", [:], csrfFrom: "/developer").status == .notFound)
        }
    }

    /// Connect from the app page against the Authlib peer: the badge shows the account, then
    /// Disconnect takes it away; all through ConnectFlow, as the API.
    @Test(arguments: TestEngines.all)
    func appPageConnectsShowsTheAccountAndDisconnects(engine: StorageEngine) async throws {
        try await OAuthPeer.with(redirectURI: testRedirectURI) { peer in
            let clock = ManualClock(Date())
            try await withApp(engine, mode: .live, clock: clock.wallClock, pages: true) { app in
                let f = try await app.oauthFixture(peer, clock: clock)
                let org = try #require(try await app.call(.get, "/api/v1/installs/\(f.installID)", token: f.admin).json["org_id"] as? String)
                let admin = try await app.signedIn(org: org, role: "admin", by: f.admin, email: "oa@example.com")
                let member = try await app.signedIn(org: org, role: "member", by: f.admin, email: "om@example.com")

                let before = try await admin.get("/marketplace/peer-app")
                #expect(before.text.contains("Not connected") && before.text.contains("href=\"/marketplace/peer-app/connect\""))
                #expect(!(try await member.get("/marketplace/peer-app")).text.contains("/connect\""))
                #expect(try await member.get("/marketplace/peer-app/connect").status == .forbidden)

                let start = try await admin.get("/marketplace/peer-app/connect")
                #expect(start.status == .found)
                let authorize = try await peer.get(try #require(start.headers[.location]))
                let callback = try #require(authorize.location)
                let back = try await admin.get(String(callback.dropFirst("http://127.0.0.1:8080".count)))
                #expect(back.status == .found)
                #expect(back.headers[.location]?.contains("result=connected") == true, "\(back.headers)")

                // The end of the flow brings the signed-in admin back to the app page, which says
                // so; a browser without a session keeps the plain landing page.
                let landing = String(try #require(back.headers[.location]).dropFirst("http://127.0.0.1:8080".count))
                let onward = try await admin.get(landing)
                #expect(onward.status == .seeOther && onward.headers[.location] == "/installs/\(f.installID)/connected?result=connected")
                let toApp = try await admin.get(try #require(onward.headers[.location]))
                #expect(toApp.status == .seeOther && toApp.headers[.location] == "/marketplace/peer-app?done=connected")
                #expect(try await admin.get("/marketplace/peer-app?done=connected").text.contains("The account is connected."))
                let plain = try await PageBrowser(app).get(landing)
                #expect(plain.status == .ok && plain.text.contains("Account connected"))

                let after = try await admin.get("/marketplace/peer-app")
                #expect(after.text.contains("id=\"connection-status\">Connected</span>"))
                #expect(after.text.contains("id=\"connection-account\">"))
                #expect(after.text.contains("id=\"connection-account-id\">"))
                #expect(after.text.contains("with Authlib test server"), "the provider's name, not its key")
                #expect(after.text.contains(">Reconnect</a>") && after.text.contains(">Disconnect</button>"))
                let disconnected = try await admin.post("/marketplace/peer-app/disconnect", [:], csrfFrom: "/marketplace/peer-app")
                #expect(disconnected.status == .seeOther)
                #expect(try await f.connection()["status"] as? String == "not_connected")
                #expect(try await admin.get("/marketplace/peer-app").text.contains("Not connected"))

                // A failed flow: the known code's sentence as an error flash; an unknown code is
                // told as server_error (nothing from the query reaches the page otherwise).
                let denied = try await admin.get("/oauth/complete?error=access_denied&install_id=\(f.installID)")
                #expect(denied.headers[.location] == "/installs/\(f.installID)/connected?error=access_denied")
                let deniedApp = try await admin.get(try #require(denied.headers[.location]))
                #expect(deniedApp.headers[.location] == "/marketplace/peer-app?connect_error=access_denied")
                #expect(try await admin.get("/marketplace/peer-app?connect_error=access_denied").text.contains("Access was declined at the provider."))
                let odd = try await admin.get("/oauth/complete?error=%3Cb%3Eodd&install_id=\(f.installID)")
                #expect(odd.headers[.location] == "/installs/\(f.installID)/connected?error=server_error")
                #expect(!(try await admin.get("/marketplace/peer-app?connect_error=%3Cb%3Eodd").text.contains("odd")))
                // A malformed install id keeps the plain page; another org's install is a 404 page.
                #expect(try await admin.get("/oauth/complete?result=connected&install_id=..%2Fx").status == .ok)
                let (otherOrg, otherOwner) = try await app.makeOrg(name: "Other")
                let stranger = try await app.signedIn(org: otherOrg, role: "admin", by: otherOwner, email: "os@example.com")
                #expect(try await stranger.get("/installs/\(f.installID)/connected?result=connected").status == .notFound)
            }
        }
    }

    /// The first start makes one org and one owner link; later starts, or a database that has an
    /// org, make nothing. A person already known joins another org with their own password.
    @Test(arguments: TestEngines.all)
    func firstOwnerLinkOnlyOnAnEmptyDatabaseAndExistingPeopleJoinWithTheirPassword(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let link = try #require(try await app.runtime.people.bootstrapFirstOwner())
            #expect(try await app.runtime.people.bootstrapFirstOwner() == nil)
            let path = String(link.dropFirst(app.runtime.settings.publicURL.count))
            let owner = PageBrowser(app)
            let page = try await owner.get(path)
            #expect(page.text.contains("Join My organisation") && page.text.contains("<label for=\"email\">Email</label>"))
            #expect(try await owner.post(path, ["name": "First", "email": "first@example.com", "password": "correct horse battery"], csrfFrom: path).status == .seeOther)
            #expect(try await owner.get("/installs").status == .ok)

            // Invited into a second org, the same email must give its own password.
            let (org, orgOwner) = try await app.makeOrg(name: "Second")
            let url = try await app.invite(org: org, email: "first@example.com", role: "member", by: orgOwner)
            let second = String(url.dropFirst(app.runtime.settings.publicURL.count))
            let other = PageBrowser(app)
            let wrong = try await other.post(second, ["name": "Someone", "password": "not the right one"], csrfFrom: second)
            #expect(wrong.status == .unprocessableContent && wrong.text.contains("already has an account"))
            #expect(try await other.post(second, ["name": "First", "password": "correct horse battery"], csrfFrom: second).status == .seeOther)
            let memberships = try await app.runtime.database.read { db in
                try await db.raw("SELECT COUNT(*) AS n FROM memberships m JOIN user_credentials c ON c.principal_id = m.principal_id WHERE c.email = 'first@example.com'")
                    .first()!.decode(column: "n", as: Int.self)
            }
            #expect(memberships == 2)
        }
    }

    @Test(arguments: TestEngines.all)
    func ownersListCreateAndRevokeAPITokensOnTheAPIAndThePage(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            let (_, otherOwner) = try await app.makeOrg(name: "Other")
            let admin = try await app.makeToken(org: org, role: "admin", by: owner)
            // The API: owners list (never the text) and revoke; admins and other orgs cannot.
            let list = try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: owner)
            #expect(list.status == .ok)
            let rows = try #require(list.json["data"] as? [[String: Any]])
            #expect(rows.count == 2 && !list.text.contains(admin) && rows.allSatisfy { $0["token"] == nil })
            expectProblem(try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: admin), .forbidden, "forbidden")
            expectProblem(try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: otherOwner), .notFound, "not_found")
            let adminID = try #require(rows.first { $0["role"] as? String == "admin" }?["id"] as? String)
            expectProblem(try await app.call(.delete, "/api/v1/orgs/\(org)/tokens/\(adminID)", token: otherOwner), .notFound, "not_found")
            #expect(try await app.call(.delete, "/api/v1/orgs/\(org)/tokens/\(adminID)", token: owner).status == .noContent)
            expectProblem(try await app.call(.get, "/api/v1/orgs/\(org)", token: admin), .unauthorized, "unauthenticated")
            expectProblem(try await app.call(.delete, "/api/v1/orgs/\(org)/tokens/\(adminID)", token: owner), .notFound, "not_found")

            // The page: an owner creates a token (shown once, and it works) and revokes it.
            let page = try await app.signedIn(org: org, role: "owner", by: owner, email: "own@example.com")
            let adminPerson = try await app.signedIn(org: org, role: "admin", by: owner, email: "adm@example.com")
            #expect(try await adminPerson.get("/settings/tokens").status == .forbidden)
            let made = try await page.post("/settings/tokens", ["name": "ci <bot>", "role": "developer"], csrfFrom: "/settings/tokens")
            #expect(made.status == .ok)
            #expect(made.text.contains("ci &lt;bot&gt;"))
            let text = try #require(made.text.range(of: #"mct_[A-Za-z0-9_-]{43}"#, options: .regularExpression).map { String(made.text[$0]) })
            #expect(try await app.call(.get, "/api/v1/orgs/\(org)", token: text).status == .ok)
            let listed = try await page.get("/settings/tokens")
            #expect(!listed.text.contains(text))
            let id = try #require((try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: owner).json["data"] as? [[String: Any]])?
                .first { $0["name"] as? String == "ci <bot>" }?["id"] as? String)
            #expect(try await page.post("/settings/tokens/\(id)/revoke", [:], csrf: false).status == .forbidden)
            #expect(try await app.call(.get, "/api/v1/orgs/\(org)", token: text).status == .ok)
            #expect(try await page.post("/settings/tokens/\(id)/revoke", [:], csrfFrom: "/settings/tokens").status == .seeOther)
            #expect(try await app.call(.get, "/api/v1/orgs/\(org)", token: text).status == .unauthorized)
        }
    }
}
