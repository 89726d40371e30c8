import Foundation
import HTTPTypes
import JWTKit
import MercatoCore
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// Tokens as a host SaaS would mint them, signed by jwt-kit; fields are optional so a test can
/// leave one out.
struct HostClaims: JWTPayload {
    var sub: String?
    var email: String?
    var name: String?
    var org: String?
    var role: String?
    var iat: Int?
    var exp: Int?
    var jti: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The host's side of embedded sign-in in a test: one HS256 key, minting against a manual clock.
struct HostSigner {
    let key: [UInt8]
    let clock: ManualClock
    var now: Int { Int(clock.wallClock.now().timeIntervalSince1970) }
    var setting: String { "whsec_" + Data(key).base64EncodedString() }

    init(clock: ManualClock) {
        key = (0 ..< 32).map { _ in UInt8.random(in: 0 ... 255) }
        self.clock = clock
    }

    func claims(org: String, sub: String = "host-user-1", role: String = "admin", name: String = "Hana Host",
                email: String = "hana@host.example") -> HostClaims {
        HostClaims(sub: sub, email: email, name: name, org: org, role: role, iat: now, exp: now + 120, jti: UUID().uuidString)
    }

    func sign(_ claims: HostClaims, key other: [UInt8]? = nil) async throws -> String {
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: other ?? key), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    static func path(_ token: String, returnTo: String? = "/installs") -> String {
        var path = "/sso/jwt?token=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        if let returnTo { path += "&return_to=" + (returnTo.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") }
        return path
    }
}

extension AppHarness {
    func count(_ sql: String) async throws -> Int {
        try await runtime.database.read { try await $0.raw(SQLQueryString(sql)).first()!.decode(column: "n", as: Int.self) }
    }
}

@Suite("Pages: embedded sign-in with a signed JWT (/sso/jwt)")
struct EmbeddedSignInTests {
    /// A good token creates the person and membership, starts a session and goes to `return_to`;
    /// a later token for the same `sub` updates the name, email and role of the same person.
    @Test(arguments: TestEngines.all)
    func aSignedTokenCreatesThePersonAndMembershipAndStartsASession(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        let host = HostSigner(clock: clock)
        try await withApp(engine, clock: clock.wallClock, pages: true, environment: ["MERCATO_SSO_SECRET": host.setting]) { app in
            let (org, _) = try await app.makeOrg()
            let browser = PageBrowser(app)
            let token = try await host.sign(host.claims(org: org, role: "admin"))
            let answer = try await browser.get(HostSigner.path(token, returnTo: "/installs?status=active"))
            #expect(answer.status == .seeOther)
            #expect(answer.headers[.location] == "/installs?status=active")
            let cookie = try #require(answer.headers[values: .setCookie].first { $0.hasPrefix("mercato_session=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"))
            #expect(answer.headers[.contentSecurityPolicy] != nil)
            let installs = try await browser.get("/installs")
            #expect(installs.status == .ok)
            #expect(installs.text.contains("Hana Host"))
            let roles = try await app.runtime.database.read { db in
                try await db.raw("""
                    SELECT m.role, p.name, p.email FROM memberships m JOIN principals p ON p.id = m.principal_id
                    WHERE m.org_id = \(bind: org) AND p.kind = 'user'
                    """).all().map { try ($0.decode(column: "role", as: String.self), $0.decode(column: "name", as: String.self),
                                         $0.decode(column: "email", as: String.self)) }
            }
            #expect(roles.count == 1 && roles.first?.0 == "admin" && roles.first?.2 == "hana@host.example")
            // Admin pages work with the role from the token.
            #expect(try await browser.get("/marketplace").status == .ok)

            // Same `sub`, new name, email and role: the same person, updated; the old session ends.
            let again = try await host.sign(host.claims(org: org, role: "member", name: "Hana H.", email: "hana@new.example"))
            let second = try await browser.get(HostSigner.path(again, returnTo: nil))
            #expect(second.status == .seeOther)
            #expect(second.headers[.location] == "/marketplace")
            let people = try await app.runtime.database.read { db in
                try await db.raw("SELECT p.name, p.email, m.role FROM principals p JOIN memberships m ON m.principal_id = p.id WHERE p.kind = 'user'")
                    .all().map { try ($0.decode(column: "name", as: String.self), $0.decode(column: "email", as: String.self),
                                      $0.decode(column: "role", as: String.self)) }
            }
            #expect(people.count == 1)
            #expect(people.first?.0 == "Hana H." && people.first?.1 == "hana@new.example" && people.first?.2 == "member")
            #expect(try await app.count("SELECT COUNT(*) AS n FROM web_sessions") == 1)
            // The member role applies at once: the owner-only page is refused.
            #expect(try await browser.get("/settings/tokens").status == .forbidden)
            // The token never reaches the logs.
            #expect(!app.logs.all.contains { $0.contains(again) || $0.contains(token) })
        }
    }

    /// `return_to` must be a path on this origin; anything else goes to `/marketplace`.
    @Test(arguments: TestEngines.all)
    func returnToOffThisOriginGoesToTheMarketplace(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        let host = HostSigner(clock: clock)
        try await withApp(engine, clock: clock.wallClock, pages: true, environment: ["MERCATO_SSO_SECRET": host.setting]) { app in
            let (org, _) = try await app.makeOrg()
            for target in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "installs", "/ok/path"] {
                let token = try await host.sign(host.claims(org: org))
                let answer = try await PageBrowser(app).get(HostSigner.path(token, returnTo: target))
                #expect(answer.status == .seeOther)
                #expect(answer.headers[.location] == (target == "/ok/path" ? "/ok/path" : "/marketplace"), "\(target)")
            }
        }
    }

    /// Every refusal is a 401 page in the layout that starts nothing: no session, no person, no
    /// membership, no cookie.
    @Test(arguments: TestEngines.all)
    func badTokensAreA401PageThatStartsNothing(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        let host = HostSigner(clock: clock)
        try await withApp(engine, clock: clock.wallClock, pages: true, environment: ["MERCATO_SSO_SECRET": host.setting]) { app in
            let (org, _) = try await app.makeOrg()
            let now = host.now
            var cases: [(String, String)] = []
            cases.append(("wrong key", try await host.sign(host.claims(org: org), key: [UInt8](repeating: 7, count: 32))))
            var expired = host.claims(org: org)
            (expired.iat, expired.exp) = (now - 400, now - 100)
            cases.append(("expired", try await host.sign(expired)))
            var long = host.claims(org: org)
            long.exp = now + 301
            cases.append(("exp - iat over 5 minutes", try await host.sign(long)))
            var future = host.claims(org: org)
            (future.iat, future.exp) = (now + 600, now + 700)
            cases.append(("issued in the future", try await host.sign(future)))
            cases.append(("unknown org", try await host.sign(host.claims(org: "org_doesnotexist"))))
            cases.append(("operator role", try await host.sign(host.claims(org: org, role: "operator"))))
            cases.append(("unknown role", try await host.sign(host.claims(org: org, role: "superuser"))))
            var noJTI = host.claims(org: org)
            noJTI.jti = nil
            cases.append(("no jti", try await host.sign(noJTI)))
            var noSub = host.claims(org: org)
            noSub.sub = nil
            cases.append(("no sub", try await host.sign(noSub)))
            var badEmail = host.claims(org: org)
            badEmail.email = "not an email"
            cases.append(("bad email", try await host.sign(badEmail)))
            // `alg: none` with the claims of a good token and no signature.
            let good = try await host.sign(host.claims(org: org))
            let parts = good.split(separator: ".")
            let none = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            cases.append(("alg none", none + "." + parts[1] + "."))
            cases.append(("signature of another token", parts[0] + "." + parts[1] + "." + (try await host.sign(host.claims(org: org))).split(separator: ".")[2]))
            cases.append(("garbage", "not.a.jwt"))
            cases.append(("empty", ""))

            for (name, token) in cases {
                let answer = try await PageBrowser(app).get(HostSigner.path(token))
                #expect(answer.status == .unauthorized, "\(name)")
                #expect(answer.headers[.contentType] == "text/html; charset=utf-8", "\(name)")
                #expect(answer.text.contains("Sign-in link not accepted"), "\(name)")
                #expect(!answer.headers[values: .setCookie].contains { $0.hasPrefix("mercato_session=") }, "\(name)")
            }
            #expect(try await app.count("SELECT COUNT(*) AS n FROM web_sessions") == 0)
            #expect(try await app.count("SELECT COUNT(*) AS n FROM principals WHERE kind = 'user'") == 0)
            #expect(try await app.count("SELECT COUNT(*) AS n FROM sso_subjects") == 0)

            // A token works once: the replay is refused and starts nothing more.
            let once = try await host.sign(host.claims(org: org))
            #expect(try await PageBrowser(app).get(HostSigner.path(once)).status == .seeOther)
            let replay = try await PageBrowser(app).get(HostSigner.path(once))
            #expect(replay.status == .unauthorized)
            #expect(replay.text.contains("already used"))
            #expect(!replay.headers[values: .setCookie].contains { $0.hasPrefix("mercato_session=") })
            #expect(try await app.count("SELECT COUNT(*) AS n FROM web_sessions") == 1)

            // Used ids are kept until their token expires, then swept.
            #expect(try await app.count("SELECT COUNT(*) AS n FROM sso_used_tokens") == 1)
            clock.advance(by: 121)
            let service = RetentionService(database: app.runtime.database, clock: clock.wallClock, logger: app.logs.logger(),
                                           idempotencyHours: 48, commandLogDays: 30)
            try await service.sweep()
            #expect(try await app.count("SELECT COUNT(*) AS n FROM sso_used_tokens") == 0)
            #expect(try await PageBrowser(app).get(HostSigner.path(once)).status == .unauthorized)
        }
    }

    /// With no `MERCATO_SSO_SECRET` embedded sign-in is off: every token is a 401 page.
    @Test(arguments: TestEngines.all)
    func withoutASecretEmbeddedSignInIsOff(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        let host = HostSigner(clock: clock)
        try await withApp(engine, clock: clock.wallClock, pages: true) { app in
            let (org, _) = try await app.makeOrg()
            let answer = try await PageBrowser(app).get(HostSigner.path(try await host.sign(host.claims(org: org))))
            #expect(answer.status == .unauthorized)
            #expect(answer.text.contains("MERCATO_SSO_SECRET"))
            #expect(try await app.count("SELECT COUNT(*) AS n FROM web_sessions") == 0)
        }
    }

    /// With the host's Ed25519 public key registered, EdDSA tokens signed by its private key are
    /// accepted; another key's, and HS256 tokens when no secret is set, are not.
    @Test(arguments: TestEngines.all)
    func eddsaTokensVerifyWithTheHostsPublicKey(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        let host = HostSigner(clock: clock)
        let hostKey = try EdDSA.PrivateKey(curve: .ed25519)
        let otherKey = try EdDSA.PrivateKey(curve: .ed25519)
        let registered = hostKey.publicKey.rawRepresentation.base64EncodedString()
        @Sendable func sign(_ claims: HostClaims, with key: EdDSA.PrivateKey) async throws -> String {
            try await JWTKeyCollection().add(eddsa: key).sign(claims)
        }
        try await withApp(engine, clock: clock.wallClock, pages: true, environment: ["MERCATO_SSO_PUBLIC_KEY": registered]) { app in
            let (org, _) = try await app.makeOrg()
            let good = try await sign(host.claims(org: org, role: "developer"), with: hostKey)
            #expect(try DefaultJWTParser().parse([UInt8](good.utf8), as: HostClaims.self).header.alg == "EdDSA")
            let browser = PageBrowser(app)
            let answer = try await browser.get(HostSigner.path(good))
            #expect(answer.status == .seeOther)
            #expect(answer.headers[.location] == "/installs")
            #expect(try await browser.get("/developer").status == .ok)

            let forged = try await PageBrowser(app).get(HostSigner.path(try await sign(host.claims(org: org), with: otherKey)))
            #expect(forged.status == .unauthorized)
            let hmac = try await PageBrowser(app).get(HostSigner.path(try await host.sign(host.claims(org: org))))
            #expect(hmac.status == .unauthorized)
            #expect(hmac.text.contains("EdDSA sign-in tokens only"))
            #expect(try await app.count("SELECT COUNT(*) AS n FROM web_sessions") == 1)
        }
    }

    @Test func theSecretSettingIsCheckedAtStart() throws {
        #expect(throws: SettingsError.self) { try Settings(environment: ["MERCATO_SSO_SECRET": "plain-text"]) }
        #expect(throws: SettingsError.self) { try Settings(environment: ["MERCATO_SSO_SECRET": "whsec_c2hvcnQ="]) }
        let key = (0 ..< 32).map { UInt8($0) }
        #expect(try Settings(environment: ["MERCATO_SSO_SECRET": "whsec_" + Data(key).base64EncodedString()]).ssoSecret == key)
        #expect(try Settings(environment: [:]).ssoSecret == nil)
        #expect(throws: SettingsError.self) { try Settings(environment: ["MERCATO_SSO_PUBLIC_KEY": Data(key.prefix(31)).base64EncodedString()]) }
        #expect(try Settings(environment: ["MERCATO_SSO_PUBLIC_KEY": Data(key).base64EncodedString()]).ssoPublicKey == key)
    }
}
