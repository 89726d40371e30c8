import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Synchronization
import Testing

/// The redirect URI of a test runtime (its settings' default public URL).
let testRedirectURI = "http://127.0.0.1:8080/api/v1/oauth/callback"

/// One install of an app that connects to the peer, and the way to drive the browser's part.
struct OAuthFixture {
    let app: AppHarness
    let peer: OAuthPeer
    let sender: CommandSender
    let clock: ManualClock
    var installID: String { sender.installID }
    var admin: String { sender.adminToken }

    /// What a browser does: start, let the provider approve, come back. Answers the callback
    /// answer and the callback URL (for replays) and the cookie it carried.
    @discardableResult
    func connect(deny: Bool = false, cookie override: String? = nil, beforeCallback: (() async throws -> Void)? = nil) async throws
        -> (answer: Answer, callback: String, cookie: String) {
        let start = try await app.call(.get, "/api/v1/installs/\(installID)/oauth/start", token: admin)
        #expect(start.status == .found, "\(start.text)")
        let location = try #require(start.headers[.location])
        let setCookie = try #require(start.headers[.setCookie])
        let pair = String(setCookie.split(separator: ";")[0])
        let authorize = try await peer.get(location + (deny ? "&deny=1" : ""))
        #expect(authorize.status == 302, "\(authorize.body)")
        let callback = try #require(authorize.location)
        #expect(callback.hasPrefix(testRedirectURI + "?"))
        try await beforeCallback?()
        let answer = try await callbackAnswer(callback, cookie: override ?? pair)
        return (answer, callback, pair)
    }

    func callbackAnswer(_ callback: String, cookie: String?) async throws -> Answer {
        let path = String(callback.dropFirst("http://127.0.0.1:8080".count))
        var headers = HTTPFields()
        if let cookie { headers[.cookie] = cookie }
        return try await app.call(.get, path, headers: headers)
    }

    /// The query of the page a flow ended on.
    func landing(_ answer: Answer) throws -> [String: String] {
        #expect(answer.status == .found)
        let location = try #require(answer.headers[.location])
        #expect(location.hasPrefix(app.runtime.settings.oauthReturnURL + "?"))
        let items = URLComponents(string: location)?.queryItems ?? []
        return Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
    }

    /// Sends `connections.token` signed at the manual clock's time.
    func token(id: String = "msg_" + UUID().uuidString) async throws -> Answer {
        let (headers, body) = try sender.sign(["install_id": installID, "command": "connections.token", "args": [:] as [String: Any]], id: id,
                                              timestamp: Int(clock.wallClock.now().timeIntervalSince1970))
        return try await app.sendConcurrently(headers, body)
    }

    func connection() async throws -> [String: Any] {
        let answer = try await app.call(.get, "/api/v1/installs/\(installID)/connection", token: admin)
        #expect(answer.status == .ok, "\(answer.text)")
        return answer.json
    }

    func installStatus() async throws -> String? {
        try await app.call(.get, "/api/v1/installs/\(installID)", token: admin).json["status"] as? String
    }

    /// Purposes of the install's sealed values that hold OAuth tokens.
    func sealedTokens() async throws -> [String] {
        try await app.runtime.database.read { db in
            try await db.raw("SELECT purpose FROM sealed_values WHERE owner_id = \(bind: installID) AND purpose LIKE 'oauth.%' ORDER BY purpose").all()
                .map { try $0.decode(column: "purpose", as: String.self) }
        }
    }

    func events() async throws -> [String] {
        try await app.runtime.database.read { db in
            try await db.raw("SELECT type FROM outbox_events WHERE install_id = \(bind: installID) ORDER BY id").all()
                .map { try $0.decode(column: "type", as: String.self) }
        }
    }

    /// Fails when any token the peer issued appears in a log line, a stored text column
    /// outside the vault, or one of `answers`.
    func expectNoTokenLeaked(in answers: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let tokens = try await peer.issued()
        #expect(!tokens.isEmpty, sourceLocation: sourceLocation)
        let columns = [("outbox_events", "payload"), ("audit_log", "details"), ("command_idempotency", "response"), ("command_log", "command"),
                       ("plugin_kv", "value"), ("oauth_connections", "last_error"), ("oauth_connections", "account_name"),
                       ("webhook_deliveries", "last_error"), ("oauth_providers", "definition")]
        var stored: [String] = []
        for (table, column) in columns {
            stored += try await app.runtime.database.read { db in
                try await db.raw("SELECT \(unsafeRaw: column) AS v FROM \(unsafeRaw: table)").all().compactMap { try $0.decode(column: "v", as: String?.self) }
            }
        }
        let haystacks = [("log lines", app.logs.all), ("stored columns", stored), ("API answers", answers)]
        for token in tokens {
            for (name, texts) in haystacks where texts.contains(where: { $0.contains(token) }) {
                Issue.record("a token appears in \(name)", sourceLocation: sourceLocation)
            }
        }
        for (name, texts) in haystacks where texts.contains(where: { $0.contains(peer.secret) }) {
            Issue.record("the client secret appears in \(name)", sourceLocation: sourceLocation)
        }
    }
}

extension AppHarness {
    /// Sets the peer up as provider `authlib`, publishes an app that connects to it, installs it.
    func oauthFixture(_ peer: OAuthPeer, clock: ManualClock, tokenAuthMethod: String = "client_secret_basic") async throws -> OAuthFixture {
        let put = try await call(.put, "/api/v1/providers/authlib", token: operatorToken, json: peer.providerBody(tokenAuthMethod: tokenAuthMethod))
        #expect(put.status == .created, "\(put.text)")
        #expect(!put.text.contains(peer.secret))
        let (_, vendor) = try await makeOrg(plan: "enterprise", name: "Vendor")
        var m = manifest("peer-app")
        m["scopes"] = ["connections:token", "install:read"]
        m["events"] = ["connection.connected", "connection.disconnected", "connection.refresh_failed"]
        m["config"] = [] as [Any]
        m["oauth"] = ["provider": "authlib", "scopes": ["profile", "email"]]
        let registered = try await registerApp(m, token: vendor)
        _ = try await call(.post, "/api/v1/developer/apps/peer-app/publish", token: vendor)
        let (_, owner) = try await makeOrg(plan: "pro", name: "Customer")
        let installed = try await call(.post, "/api/v1/installs", token: owner, json: ["app": "peer-app", "config": [:] as [String: Any]])
        #expect(installed.status == .created, "\(installed.text)")
        #expect(installed.json["status"] as? String == "pending_oauth")
        let sender = CommandSender(installID: installed.json["id"] as! String, appKey: "peer-app",
                                   secret: (registered["secrets"] as! [String: String])["command"]!, adminToken: owner, vendorToken: vendor)
        return OAuthFixture(app: self, peer: peer, sender: sender, clock: clock)
    }
}

@Suite("OAuth connections against a real authorization server (Authlib)")
struct OAuthTests {
    func withFixture(_ engine: StorageEngine, _ body: @escaping @Sendable (OAuthFixture) async throws -> Void) async throws {
        try await OAuthPeer.with(redirectURI: testRedirectURI) { peer in
            let clock = ManualClock(Date())
            try await withApp(engine, mode: .live, clock: clock.wallClock) { app in
                try await body(try await app.oauthFixture(peer, clock: clock))
            }
        }
    }

    @Test(arguments: TestEngines.all)
    func connectRefreshDisconnect(engine: StorageEngine) async throws {
        try await withFixture(engine) { f in
            var answers: [String] = []
            // Members see the provider, never its secret.
            let providers = try await f.app.call(.get, "/api/v1/providers", token: f.admin)
            answers.append(providers.text)
            let listed = try #require((providers.json["data"] as? [[String: Any]])?.first { $0["key"] as? String == "authlib" })
            #expect(listed["configured"] as? Bool == true && listed["client_secret_set"] as? Bool == true)
            #expect(listed["client_secret"] == nil)

            // The start redirect: state, PKCE S256, exact redirect URI, the browser cookie.
            let start = try await f.app.call(.get, "/api/v1/installs/\(f.installID)/oauth/start", token: f.admin)
            #expect(start.status == .found)
            let query = Dictionary((URLComponents(string: start.headers[.location] ?? "")?.queryItems ?? []).map { ($0.name, $0.value ?? "") },
                                   uniquingKeysWith: { a, _ in a })
            #expect(query["redirect_uri"] == testRedirectURI && query["client_id"] == f.peer.clientID && query["response_type"] == "code")
            #expect(query["code_challenge_method"] == "S256" && query["code_challenge"]?.count == 43 && (query["state"]?.count ?? 0) >= 43)
            #expect(query["scope"] == "profile email")
            let cookie = try #require(start.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/api/v1/oauth/callback") && cookie.contains("Max-Age=600"))

            // The whole flow.
            let (done, _, _) = try await f.connect()
            let landing = try f.landing(done)
            #expect(landing == ["result": "connected", "install_id": f.installID])
            #expect(done.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await f.installStatus() == "active")
            let view = try await f.connection()
            #expect(view["status"] as? String == "connected" && view["provider"] as? String == "authlib")
            #expect((view["id"] as? String)?.hasPrefix("con_") == true)
            #expect(view["account"] as? [String: String] == ["id": "u_1", "name": "Ada Example"])
            #expect(view["scopes"] as? [String] == ["profile", "email"])
            #expect(view["expires_at"] is String)
            #expect(try await f.sealedTokens() == ["oauth.access_token", "oauth.refresh_token"])
            #expect(try await f.peer.counter("code_exchanges_ok") == 1)

            // The app gets the access token; the server accepts it.
            let first = try await f.token(id: "msg_first")
            #expect(first.status == .ok, "\(first.text)")
            let result = try #require(first.json["result"] as? [String: Any])
            let access = try #require(result["access_token"] as? String)
            #expect(try await f.peer.get(f.peer.base + "/userinfo", headers: [("Authorization", "Bearer \(access)")]).status == 200)
            // Its replay comes from the idempotency store, where it is kept sealed.
            let replay = try await f.token(id: "msg_first")
            #expect(replay.text == first.text && replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let kept = try await f.app.runtime.database.read { db in
                try await db.raw("SELECT response FROM command_idempotency WHERE webhook_id = 'msg_first'").first()?.decode(column: "response", as: String.self)
            }
            #expect(kept?.hasPrefix("sealed:") == true)

            // Near expiry the next request refreshes first; the old refresh token is spent once.
            f.clock.advance(by: 3600 - 60)
            let second = try await f.token()
            #expect(second.status == .ok, "\(second.text)")
            let refreshed = try #require((second.json["result"] as? [String: Any])?["access_token"] as? String)
            #expect(refreshed != access)
            #expect(try await f.peer.counter("refresh_ok") == 1)
            #expect(try await f.peer.counter("refresh_reuse_rejected") == 0)
            #expect((try await f.connection())["refreshed_at"] is String)

            // The background pass refreshes ahead of expiry too.
            f.clock.advance(by: 3600 - 60)
            #expect(await f.app.runtime.tokens.refreshDue() == 1)
            #expect(try await f.peer.counter("refresh_ok") == 2)
            #expect(await f.app.runtime.tokens.refreshDue() == 0)

            // Disconnect revokes at the provider and destroys the tokens.
            let latest = try #require((try await f.token()).json["result"] as? [String: Any])["access_token"] as? String
            let gone = try await f.app.call(.delete, "/api/v1/installs/\(f.installID)/connection", token: f.admin)
            answers.append(gone.text)
            #expect(gone.status == .ok && gone.json["revoked_at_provider"] as? Bool == true, "\(gone.text)")
            #expect(try await f.peer.get(f.peer.base + "/userinfo", headers: [("Authorization", "Bearer \(latest ?? "")")]).status == 401)
            #expect(try await f.sealedTokens().isEmpty)
            #expect(try await f.installStatus() == "pending_oauth")
            #expect((try await f.connection())["status"] as? String == "not_connected")
            let after = try await f.token()
            expectProblem(after, .conflict, "not_connected")
            #expect(try await f.events().filter { $0.hasPrefix("connection.") } == ["connection.connected", "connection.disconnected"])

            for path in ["/api/v1/installs/\(f.installID)", "/api/v1/installs/\(f.installID)/connection", "/api/v1/audit"] {
                answers.append(try await f.app.call(.get, path, token: f.admin).text)
            }
            try await f.expectNoTokenLeaked(in: answers)
        }
    }

    /// 20 concurrent token requests on a token about to expire, half through the gateway and
    /// half through a second service instance over the same database (another node): one
    /// refresh at the provider, and no refresh token is used twice.
    @Test(arguments: TestEngines.all)
    func twentyConcurrentRequestsRefreshOnce(engine: StorageEngine) async throws {
        try await withFixture(engine) { f in
            try await f.connect()
            let runtime = f.app.runtime
            let otherNode = TokenRefresher(OAuthDependencies(database: runtime.database, secrets: runtime.secrets, providers: runtime.providers,
                                                             installs: runtime.installs, revoker: runtime.revoker, settings: runtime.settings,
                                                             clock: f.clock.wallClock, logger: Logger(label: "node-b")))
            f.clock.advance(by: 3600 - 30)
            try await f.peer.control(["refresh_delay_seconds": 0.3])
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0 ..< 20 {
                    group.addTask {
                        if i % 2 == 0 {
                            let answer = try await f.token()
                            #expect(answer.status == .ok, "\(answer.text)")
                            return (answer.json["result"] as? [String: Any])?["access_token"] as? String ?? "-"
                        }
                        return try await otherNode.accessToken(for: f.installID).token
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(tokens.count == 1)
            #expect(try await f.peer.counter("refresh_calls") == 1)
            #expect(try await f.peer.counter("refresh_reuse_rejected") == 0)
            #expect(try await f.peer.get(f.peer.base + "/userinfo", headers: [("Authorization", "Bearer \(tokens.first ?? "")")]).status == 200)
        }
    }

    /// Every way a connect flow can fail ends on the landing page with its code, and nothing
    /// is stored.
    @Test(arguments: TestEngines.all)
    func failedFlowsStoreNothing(engine: StorageEngine) async throws {
        try await withFixture(engine) { f in
            let connectionEvents = Mutex(0)
            func expectNothingStored(_ code: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                #expect(try await f.sealedTokens().isEmpty, sourceLocation: sourceLocation)
                #expect(try await f.installStatus() == "pending_oauth", sourceLocation: sourceLocation)
                #expect((try await f.connection())["status"] as? String == "not_connected", "\(code)", sourceLocation: sourceLocation)
                let events = try await f.events().filter { $0.hasPrefix("connection.") }.count
                #expect(events == connectionEvents.withLock { $0 }, "\(code)", sourceLocation: sourceLocation)
            }
            // The user declines at the provider.
            let denied = try await f.connect(deny: true)
            #expect(try f.landing(denied.answer)["error"] == "access_denied")
            try await expectNothingStored("access_denied")

            // The callback arrives in another browser (no cookie, or another flow's cookie).
            let (noCookie, callback, cookie) = try await f.connect(cookie: "unrelated=1")
            #expect(try f.landing(noCookie)["error"] == "browser_mismatch")
            try await expectNothingStored("browser_mismatch")
            let wrong = cookie.split(separator: "=")[0] + "=" + String(repeating: "A", count: 43)
            #expect(try f.landing(try await f.callbackAnswer(callback, cookie: String(wrong)))["error"] == "browser_mismatch")
            // ... which did not use the state up: the right browser can still finish.
            #expect(try f.landing(try await f.callbackAnswer(callback, cookie: cookie))["result"] == "connected")
            // A replay of a used callback.
            #expect(try f.landing(try await f.callbackAnswer(callback, cookie: cookie))["error"] == "state_replayed")
            _ = try await f.app.call(.delete, "/api/v1/installs/\(f.installID)/connection", token: f.admin)
            connectionEvents.withLock { $0 = 2 }   // connected, disconnected

            // An unknown state.
            var tampered = URLComponents(string: callback)!
            tampered.queryItems = tampered.queryItems!.map { $0.name == "state" ? URLQueryItem(name: "state", value: "forged") : $0 }
            #expect(try f.landing(try await f.callbackAnswer(tampered.string!, cookie: cookie))["error"] == "state_unknown")

            // Too slow: more than 10 minutes between start and callback.
            let late = try await f.connect(beforeCallback: { f.clock.advance(by: 601) })
            #expect(try f.landing(late.answer)["error"] == "state_expired")
            // The server rejects a wrong PKCE verifier: the stored one is swapped before the callback.
            let before = try await f.peer.counter("pkce_failures")
            let swapped = try await f.connect(beforeCallback: {
                try await f.app.runtime.database.transaction { db in
                    let rows = try await db.raw("SELECT id, org_id FROM oauth_states WHERE used_at IS NULL ORDER BY id DESC").all()
                    let id = try rows[0].decode(column: "id", as: String.self)
                    let org = try rows[0].decode(column: "org_id", as: String.self)
                    try await f.app.runtime.secrets.put(String(repeating: "x", count: 43), for: SealContext(org: org, owner: id, purpose: "oauth.pkce_verifier"), on: db)
                }
            })
            #expect(try f.landing(swapped.answer)["error"] == "exchange_failed")
            #expect(try await f.peer.counter("pkce_failures") == before + 1)
            try await expectNothingStored("exchange_failed")

            // The operator has not set credentials: the start answers a problem, not a redirect.
            _ = try await f.app.call(.put, "/api/v1/providers/authlib", token: f.app.operatorToken, json: ["client_id": NSNull()])
            let unconfigured = try await f.app.call(.get, "/api/v1/installs/\(f.installID)/oauth/start", token: f.admin)
            expectProblem(unconfigured, .conflict, "provider_not_configured")
            try await f.expectNoTokenLeaked(in: [])
        }
    }

    /// A transient refresh failure backs off without invalidating; `invalid_grant` marks the
    /// connection `needs_reconnect` and emits `connection.refresh_failed`.
    @Test(arguments: TestEngines.all)
    func refreshFailures(engine: StorageEngine) async throws {
        try await withFixture(engine) { f in
            try await f.connect()
            let access = try #require((try await f.token()).json["result"] as? [String: Any])["access_token"] as? String

            // The provider is down, the token still works: the app gets it, the failure is noted.
            try await f.peer.control(["fail_refresh_with": "server_error", "times": 1])
            f.clock.advance(by: 3600 - 60)
            let stillGood = try await f.token()
            #expect((stillGood.json["result"] as? [String: Any])?["access_token"] as? String == access)
            let noted = try await f.connection()
            #expect(noted["status"] as? String == "connected" && noted["last_error"] as? String == "provider_http_503")

            // Down while the token has expired: 503 with Retry-After, not kept for idempotency.
            try await f.peer.control(["fail_refresh_with": "temporarily_unavailable", "times": 1])
            f.clock.advance(by: 120)
            let unavailable = try await f.token(id: "msg_retry_me")
            expectProblem(unavailable, .serviceUnavailable, "provider_unavailable")
            #expect(unavailable.headers[.retryAfter] != nil)
            let retried = try await f.token(id: "msg_retry_me")
            #expect(retried.status == .ok, "\(retried.text)")
            #expect(retried.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)

            // The grant is revoked at the provider: needs_reconnect, event, install back to pending.
            try await f.peer.control(["fail_refresh_with": "invalid_grant", "times": 1])
            f.clock.advance(by: 3600)
            let dead = try await f.token()
            expectProblem(dead, .conflict, "needs_reconnect")
            let view = try await f.connection()
            #expect(view["status"] as? String == "needs_reconnect" && view["last_error"] as? String == "invalid_grant")
            #expect(try await f.sealedTokens().isEmpty)
            #expect(try await f.installStatus() == "pending_oauth")
            #expect(try await f.events().last == "connection.refresh_failed")
            expectProblem(try await f.token(), .conflict, "needs_reconnect")

            // Reconnecting heals it.
            #expect(try f.landing(try await f.connect().answer)["result"] == "connected")
            #expect((try await f.connection())["status"] as? String == "connected")
            #expect(try await f.token().status == .ok)
            try await f.expectNoTokenLeaked(in: [])
        }
    }

    /// The provider rotates the refresh token on every refresh, and storing the new set fails
    /// for a while (a trigger refuses the update): the store is retried while the lease is held,
    /// so the rotated refresh token is not lost and the next refresh still works.
    @Test(arguments: TestEngines.all)
    func aRotatedRefreshTokenSurvivesAPassingStorageFailure(engine: StorageEngine) async throws {
        try await withFixture(engine) { f in
            try await f.connect()
            let first = try #require((try await f.token()).json["result"] as? [String: Any])["access_token"] as? String
            let faults: [String] = engine == .sqlite
                ? ["""
                   CREATE TRIGGER refresh_fault BEFORE UPDATE OF token_version ON oauth_connections
                   WHEN NEW.token_version <> OLD.token_version BEGIN SELECT RAISE(ABORT, 'injected storage fault'); END
                   """]
                : ["CREATE FUNCTION refresh_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected storage fault'; END $$",
                   """
                   CREATE TRIGGER refresh_fault BEFORE UPDATE ON oauth_connections FOR EACH ROW
                   WHEN (NEW.token_version <> OLD.token_version) EXECUTE FUNCTION refresh_fault()
                   """]
            let cure = engine == .sqlite ? ["DROP TRIGGER refresh_fault"] : ["DROP TRIGGER refresh_fault ON oauth_connections", "DROP FUNCTION refresh_fault()"]
            func run(_ statements: [String]) async throws {
                try await f.app.runtime.database.transaction { db in for sql in statements { try await db.raw(SQLQueryString(sql)).run() } }
            }
            try await run(faults)

            f.clock.advance(by: 3600 - 60)
            async let refreshed = f.token()
            // Wait for a failed store (the provider has spent the old refresh token by then),
            // then let storage work again.
            var waited = 0
            while !f.app.logs.all.contains(where: { $0.contains("storing refreshed oauth tokens failed; retrying") }) && waited < 200 {
                try await Task.sleep(for: .milliseconds(25))
                waited += 1
            }
            #expect(waited < 200, "no store failed")
            #expect(try await f.peer.counter("refresh_ok") == 1)
            try await run(cure)
            let answer = try await refreshed
            let second = try #require(answer.json["result"] as? [String: Any], "\(answer.text)")["access_token"] as? String
            #expect(second != nil && second != first)

            // The stored refresh token is the rotated one: the next refresh is accepted.
            f.clock.advance(by: 3600 - 60)
            let third = try #require((try await f.token()).json["result"] as? [String: Any])["access_token"] as? String
            #expect(third != nil && third != second)
            #expect(try await f.peer.counter("refresh_ok") == 2)
            #expect(try await f.peer.counter("refresh_reuse_rejected") == 0)
            #expect((try await f.connection())["status"] as? String == "connected")
            try await f.expectNoTokenLeaked(in: [])
        }
    }

    /// Upgrades that change what the app asks of the provider: more provider scopes keep the
    /// connection serving and ask the admin to reconnect; a version without the provider
    /// destroys the connection and gives the grant back.
    @Test(arguments: TestEngines.all)
    func upgradesThatChangeTheProviderOrItsScopes(engine: StorageEngine) async throws {
        try await withFixture(engine) { f in
            try await f.connect()
            #expect(try await f.installStatus() == "active")
            func publish(_ version: String, oauth: [String: Any]?) async throws {
                var m = manifest("peer-app", version: version)
                m["scopes"] = ["connections:token", "install:read"]
                m["events"] = ["connection.connected", "connection.disconnected", "connection.refresh_failed", "install.upgraded"]
                m["config"] = [] as [Any]
                m["oauth"] = oauth
                let put = try await f.app.call(.put, "/api/v1/developer/apps/peer-app", token: f.sender.vendorToken, json: m)
                #expect(put.status == .ok, "\(put.text)")
            }

            // 1.1.0 asks the provider for one more scope: reconnect needed, the old one serves.
            try await publish("1.1.0", oauth: ["provider": "authlib", "scopes": ["profile", "email", "calendar"]])
            let more = try await f.app.call(.post, "/api/v1/installs/\(f.installID)/upgrade", token: f.admin, json: ["version": "1.1.0"])
            #expect(more.status == .ok, "\(more.text)")
            #expect(more.json["status"] as? String == "pending_oauth")
            #expect((try await f.connection())["status"] as? String == "connected")
            #expect(try await f.token().status == .ok)
            #expect(try f.landing(try await f.connect().answer)["result"] == "connected")
            #expect(try await f.installStatus() == "active")
            #expect((try await f.connection())["scopes"] as? [String] == ["profile", "email", "calendar"])

            // 2.0.0 no longer uses the provider: the connection is gone and revoked.
            let revocations = try await f.peer.counter("revocation_calls")
            try await publish("2.0.0", oauth: nil)
            let none = try await f.app.call(.post, "/api/v1/installs/\(f.installID)/upgrade", token: f.admin, json: ["version": "2.0.0"])
            #expect(none.status == .ok, "\(none.text)")
            #expect(none.json["status"] as? String == "active")
            #expect(try await f.sealedTokens().isEmpty)
            #expect(try await f.app.runtime.database.read { try await ConnectionStore.find(install: f.installID, on: $0) } == nil)
            #expect(try await f.peer.counter("revocation_calls") > revocations)
            let events = try await f.events()
            // (The hand-moved clock stands still, so ids made in one millisecond do not sort by time.)
            #expect(events.filter { $0 == "connection.disconnected" }.count == 1 && events.filter { $0 == "install.upgraded" }.count == 2, "\(events)")
            expectProblem(try await f.token(), .conflict, "not_connected")
            try await f.expectNoTokenLeaked(in: [more.text, none.text])
        }
    }

    /// Uninstalling gives the grant back to the provider and leaves no token or connection.
    @Test(arguments: TestEngines.all)
    func uninstallRevokesAndDestroys(engine: StorageEngine) async throws {
        try await withFixture(engine) { f in
            try await f.connect()
            let access = try #require((try await f.token()).json["result"] as? [String: Any])["access_token"] as? String
            let removed = try await f.app.call(.delete, "/api/v1/installs/\(f.installID)", token: f.admin)
            #expect(removed.status == .ok)
            #expect(try await f.peer.counter("revocations") >= 1)
            #expect(try await f.peer.get(f.peer.base + "/userinfo", headers: [("Authorization", "Bearer \(access ?? "")")]).status == 401)
            #expect(try await f.sealedTokens().isEmpty)
            let rows = try await f.app.runtime.database.read { db in
                try await db.raw("SELECT COUNT(*) AS n FROM oauth_connections WHERE install_id = \(bind: f.installID)").first()?.decode(column: "n", as: Int.self)
            }
            #expect(rows == 0)
        }
    }

    /// The provider API: operator only, validated, the secret write-only.
    @Test(arguments: TestEngines.all)
    func providerAPI(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let (_, owner) = try await app.makeOrg()
            let body: [String: Any] = ["name": "Own IdP", "authorize_url": "https://idp.example/authorize", "token_url": "https://idp.example/token",
                                       "client_id": "abc", "client_secret": "s3cr3t-value"]
            expectProblem(try await app.call(.put, "/api/v1/providers/own-idp", token: owner, json: body), .forbidden, "forbidden")
            let bad = try await app.call(.put, "/api/v1/providers/own-idp", token: app.operatorToken,
                                         json: ["name": "x", "authorize_url": "http://idp.example/a", "token_url": "https://idp.example/t", "color": "red",
                                                "client_id": "abc"])
            expectProblem(bad, .unprocessableContent, "invalid_request")
            for field in ["authorize_url", "color", "client_secret"] { #expect(bad.text.contains(field), "\(field): \(bad.text)") }
            let created = try await app.call(.put, "/api/v1/providers/own-idp", token: app.operatorToken, json: body)
            #expect(created.status == .created, "\(created.text)")
            #expect(created.json["client_secret_set"] as? Bool == true && created.json["source"] as? String == "api")
            #expect(!created.text.contains("s3cr3t-value"))
            // Only the credentials: the definition stays.
            let updated = try await app.call(.put, "/api/v1/providers/own-idp", token: app.operatorToken, json: ["client_id": "def"])
            #expect(updated.status == .ok && updated.json["client_id"] as? String == "def" && updated.json["name"] as? String == "Own IdP")
            let list = try await app.call(.get, "/api/v1/providers", token: owner)
            #expect(list.status == .ok && !list.text.contains("s3cr3t-value"))
            // The secret is sealed, not stored in the provider row.
            let stored = try await app.runtime.database.read { db in
                try await db.raw("SELECT definition FROM oauth_providers WHERE key = 'own-idp'").first()?.decode(column: "definition", as: String.self)
            }
            #expect(stored?.contains("s3cr3t") == false)
        }
    }
}
