import Foundation
import HTTPTypes
import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// An app with a config schema that exercises every rule.
func configuredManifest(_ key: String, version: String = "1.0.0", plan: String = "free", scopes: [String] = ["kv:read"],
                        extraFields: [[String: Any]] = [], oauth: Bool = false) -> [String: Any] {
    var m = manifest(key, version: version, plan: plan)
    m["scopes"] = scopes
    m["config"] = [
        ["key": "api_key", "label": "API key", "type": "secret", "required": true],
        ["key": "region", "label": "Region", "type": "enum", "options": ["eu", "us"], "default": "eu"],
        ["key": "channel", "label": "Channel", "type": "string", "pattern": "^#[a-z]+$"],
        ["key": "retries", "label": "Retries", "type": "number", "min": 0, "max": 10, "default": 3],
        ["key": "endpoint", "label": "Endpoint", "type": "url"],
        ["key": "verbose", "label": "Verbose", "type": "boolean"],
    ] + extraFields
    if oauth { m["oauth"] = ["provider": "test-provider", "scopes": ["read"]] }
    return m
}

/// An org with a published app and tokens of every role.
struct InstallFixture {
    let org: String
    let owner: String
    let admin: String
    let developer: String
    let member: String
    let otherOwner: String
}

extension AppHarness {
    func installFixture(plan: String = "pro", apps: [[String: Any]] = [configuredManifest("acme-crm")]) async throws -> InstallFixture {
        let (vendorOrg, vendor) = try await makeOrg(plan: "enterprise", name: "Vendor")
        _ = vendorOrg
        for app in apps {
            _ = try await registerApp(app, token: vendor)
            #expect(try await call(.post, "/api/v1/developer/apps/\(app["key"] as! String)/publish", token: vendor).status == .ok)
        }
        let (org, owner) = try await makeOrg(plan: plan, name: "Customer")
        let (_, otherOwner) = try await makeOrg(plan: "enterprise", name: "Other")
        return InstallFixture(org: org, owner: owner,
                              admin: try await makeToken(org: org, role: "admin", by: owner),
                              developer: try await makeToken(org: org, role: "developer", by: owner),
                              member: try await makeToken(org: org, role: "member", by: owner),
                              otherOwner: otherOwner)
    }

    func install(_ app: String, token: String, config: [String: Any] = ["api_key": "sk_live_TOPSECRET"]) async throws -> Answer {
        try await call(.post, "/api/v1/installs", token: token, json: ["app": app, "config": config])
    }
}

@Suite("Installs over HTTP")
struct InstallTests {
    /// Every install route against every kind of caller, on both engines.
    @Test(arguments: TestEngines.all)
    func rbacAndCrossOrgMatrix(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let f = try await app.installFixture()
            struct Row { let name: String; let method: HTTPRequest.Method; let path: (String) -> String; let body: [String: Any]?
                         let allowed: Set<String> }
            let admins: Set<String> = ["owner", "admin"]
            let everyone: Set<String> = ["owner", "admin", "developer", "member"]
            let rows = [
                Row(name: "list", method: .get, path: { _ in "/api/v1/installs" }, body: nil, allowed: everyone),
                Row(name: "read", method: .get, path: { "/api/v1/installs/\($0)" }, body: nil, allowed: everyone),
                Row(name: "patch", method: .patch, path: { "/api/v1/installs/\($0)/config" }, body: ["channel": "#ops"], allowed: admins),
                Row(name: "disable", method: .post, path: { "/api/v1/installs/\($0)/disable" }, body: nil, allowed: admins),
                Row(name: "enable", method: .post, path: { "/api/v1/installs/\($0)/enable" }, body: nil, allowed: admins),
                Row(name: "upgrade", method: .post, path: { "/api/v1/installs/\($0)/upgrade" }, body: ["version": "9.9.9"], allowed: admins),
                Row(name: "uninstall", method: .delete, path: { "/api/v1/installs/\($0)" }, body: nil, allowed: admins),
            ]
            let callers = [("owner", f.owner), ("admin", f.admin), ("developer", f.developer), ("member", f.member),
                           ("other-org", f.otherOwner), ("operator", app.operatorToken)]
            for row in rows {
                for (who, token) in callers {
                    // A fresh install per cell, so uninstall and disable do not disturb the next one.
                    let created = try await app.install("acme-crm", token: f.owner)
                    #expect(created.status == .created, "\(created.text)")
                    let id = created.json["id"] as! String
                    let answer = try await app.call(row.method, row.path(id), token: token, json: row.body)
                    let expected: HTTPResponse.Status
                    if who == "other-org" { expected = row.name == "list" ? .ok : .notFound }
                    else if who == "operator" { expected = .forbidden }
                    else if row.allowed.contains(who) { expected = row.name == "upgrade" ? .conflict : .ok }   // 9.9.9 is not a version: 409/422 past RBAC
                    else { expected = .forbidden }
                    if row.name == "upgrade" && expected == .conflict {
                        #expect([.conflict, .unprocessableContent].contains(answer.status), "\(row.name) as \(who): \(answer.text)")
                    } else {
                        #expect(answer.status == expected, "\(row.name) as \(who): \(answer.text)")
                    }
                    if who == "other-org" && row.name == "list" {
                        #expect((answer.json["data"] as? [Any])?.isEmpty == true)
                    }
                    _ = try await app.call(.delete, "/api/v1/installs/\(id)", token: f.owner)
                }
            }
            // Installing: admins only; the operator has no org.
            for (who, token) in callers {
                let answer = try await app.install("acme-crm", token: token)
                let expected: HTTPResponse.Status = ["owner", "admin", "other-org"].contains(who) ? .created : .forbidden
                #expect(answer.status == expected, "install as \(who): \(answer.text)")
                if answer.status == .created { _ = try await app.call(.delete, "/api/v1/installs/\(answer.json["id"] as! String)", token: who == "other-org" ? f.otherOwner : f.owner) }
            }
        }
    }

    @Test(arguments: TestEngines.all)
    func configIsValidatedMaskedAndPatched(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let f = try await app.installFixture()
            let bad = try await app.install("acme-crm", token: f.admin, config: [
                "region": "mars", "channel": "ops", "retries": 11, "endpoint": "not a url", "verbose": "yes", "colour": "red",
            ])
            expectProblem(bad, .unprocessableContent, "invalid_config")
            let fields = Set((bad.json["errors"] as? [[String: String]] ?? []).compactMap { $0["field"] })
            #expect(fields == ["config.api_key", "config.region", "config.channel", "config.retries", "config.endpoint", "config.verbose", "config.colour"])

            let created = try await app.install("acme-crm", token: f.admin, config: ["api_key": "sk_live_TOPSECRET", "channel": "#ops"])
            #expect(created.status == .created, "\(created.text)")
            #expect(created.json["status"] as? String == "active")
            #expect(created.json["scopes"] as? [String] == ["kv:read"])
            let config = try #require(created.json["config"] as? [String: Any])
            #expect(config["api_key"] as? String == "********")
            #expect(config["region"] as? String == "eu")       // default
            #expect(config["retries"] as? Int == 3)
            #expect(!created.text.contains("TOPSECRET"))
            let id = try #require(created.json["id"] as? String)

            // PATCH without the secret keeps it; the mask keeps it; null clears an optional field.
            let patched = try await app.call(.patch, "/api/v1/installs/\(id)/config", token: f.admin, json: ["channel": "#sales", "retries": 5])
            #expect(patched.status == .ok, "\(patched.text)")
            #expect((patched.json["config"] as? [String: Any])?["channel"] as? String == "#sales")
            #expect(try await app.runtime.installs.configInClear(id)["api_key"] == .string("sk_live_TOPSECRET"))
            _ = try await app.call(.patch, "/api/v1/installs/\(id)/config", token: f.admin, json: ["api_key": "********", "channel": NSNull()])
            let clear = try await app.runtime.installs.configInClear(id)
            #expect(clear["api_key"] == .string("sk_live_TOPSECRET"))
            #expect(clear["channel"] == nil)
            expectProblem(try await app.call(.patch, "/api/v1/installs/\(id)/config", token: f.admin, json: ["api_key": NSNull()]), .unprocessableContent, "invalid_config")
            _ = try await app.call(.patch, "/api/v1/installs/\(id)/config", token: f.admin, json: ["api_key": "sk_live_ROTATED"])
            #expect(try await app.runtime.installs.configInClear(id)["api_key"] == .string("sk_live_ROTATED"))

            // Stored sealed, each field its own value; nothing in clear; nothing in events, audit or logs.
            let stored = try await app.runtime.database.read { db in
                try await db.raw("SELECT purpose, ciphertext FROM sealed_values WHERE owner_id = \(bind: id)").all()
                    .map { (try $0.decode(column: "purpose", as: String.self), try $0.decode(column: "ciphertext", as: String.self)) }
            }
            #expect(Set(stored.map(\.0)) == ["config.api_key", "config.region", "config.retries"])
            let everything = try await app.runtime.database.read { db -> String in
                let events = try await db.raw("SELECT payload FROM outbox_events").all().map { try $0.decode(column: "payload", as: String.self) }
                let audit = try await db.raw("SELECT details FROM audit_log").all().map { try $0.decode(column: "details", as: String.self) }
                return (events + audit + stored.map(\.1)).joined(separator: "\n")
            }
            for secret in ["TOPSECRET", "ROTATED", "#sales", "#ops"] {
                #expect(!everything.contains(secret))
                for line in app.logs.all { #expect(!line.contains(secret)) }
            }
            #expect(everything.contains("\"changed_fields\":[\"channel\",\"retries\"]"))
        }
    }

    @Test(arguments: TestEngines.all)
    func aSealedConfigValueCopiedIntoAnotherInstallFailsToOpen(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let f = try await app.installFixture(apps: [configuredManifest("app-one"), configuredManifest("app-two")])
            let one = try await app.install("app-one", token: f.owner, config: ["api_key": "key-of-one"]).json["id"] as! String
            let two = try await app.install("app-two", token: f.owner, config: ["api_key": "key-of-two"]).json["id"] as! String
            try await app.runtime.database.transaction { db in
                try await db.raw("""
                    UPDATE sealed_values SET ciphertext = (SELECT ciphertext FROM sealed_values WHERE owner_id = \(bind: one) AND purpose = 'config.api_key')
                    WHERE owner_id = \(bind: two) AND purpose = 'config.api_key'
                    """).run()
            }
            await #expect(throws: VaultError.authenticationFailed) { _ = try await app.runtime.installs.configInClear(two) }
            // The API answers a clear 500, never the other install's value.
            let answer = try await app.call(.get, "/api/v1/installs/\(two)", token: f.owner)
            expectProblem(answer, .internalServerError, "sealed_value_unreadable")
            #expect(!answer.text.contains("key-of-one"))
            #expect(try await app.runtime.installs.configInClear(one)["api_key"] == .string("key-of-one"))
        }
    }

    /// A failure after every write of a change rolls back the change, its event and its audit row.
    @Test(arguments: TestEngines.all)
    func aChangeAndItsEventCommitTogetherOrNotAtAll(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let f = try await app.installFixture()
            struct Crash: Error {}
            var failing = app.runtime.installs
            failing.faultInjection = { _ in throw Crash() }
            let actor = InstallService.Actor(try #require(try await app.runtime.tenancy.authenticate(token: f.owner)), requestID: "req-crash")

            await #expect(throws: Crash.self) {
                _ = try await failing.install(appKey: "acme-crm", version: nil, config: ["api_key": .string("x-secret")], by: actor)
            }
            func counts() async throws -> [Int] {
                try await app.runtime.database.read { db in
                    var out: [Int] = []
                    for table in ["installs", "outbox_events", "audit_log WHERE target LIKE 'ins_%'", "sealed_values WHERE purpose LIKE 'config.%'"] {
                        out.append(try await db.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first()!.decode(column: "n", as: Int.self))
                    }
                    return out
                }
            }
            #expect(try await counts() == [0, 0, 0, 0])

            let id = try #require(try await app.install("acme-crm", token: f.owner).json["id"] as? String)
            let before = try await counts()
            await #expect(throws: Crash.self) { _ = try await failing.patchConfig(id, patch: ["channel": .string("#x")], by: actor) }
            await #expect(throws: Crash.self) { _ = try await failing.setEnabled(id, false, by: actor) }
            await #expect(throws: Crash.self) { try await failing.uninstall(id, by: actor) }
            #expect(try await counts() == before)
            let view = try await app.runtime.installs.get(id, by: actor.principal)
            #expect(view.install.status == .active)
            #expect(view.config["channel"] == nil)
        }
    }

    @Test(arguments: TestEngines.all)
    func planQuotaAndUniquenessRules(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let apps = (1 ... 6).map { configuredManifest("free-app-\($0)") } + [configuredManifest("pro-app", plan: "pro")]
            let f = try await app.installFixture(plan: "free", apps: apps)
            expectProblem(try await app.install("pro-app", token: f.owner), .forbidden, "plan_required")
            for i in 1 ... 5 { #expect(try await app.install("free-app-\(i)", token: f.owner).status == .created) }
            expectProblem(try await app.install("free-app-6", token: f.owner), .forbidden, "quota_exceeded")
            expectProblem(try await app.install("free-app-1", token: f.owner), .conflict, "already_installed")
            expectProblem(try await app.install("no-such-app", token: f.owner), .notFound, "not_found")
            let list = try await app.call(.get, "/api/v1/installs?limit=2", token: f.member)
            #expect((list.json["data"] as? [Any])?.count == 2)
            let cursor = try #require(list.json["next_cursor"] as? String)
            let rest = try await app.call(.get, "/api/v1/installs?limit=50&cursor=\(cursor)", token: f.member)
            #expect((rest.json["data"] as? [Any])?.count == 3)
            // The page's configs (read for the whole page at once) are each install's own, as its GET shows it.
            for listed in ((list.json["data"] as? [[String: Any]]) ?? []) + ((rest.json["data"] as? [[String: Any]]) ?? []) {
                let id = try #require(listed["id"] as? String)
                let one = try await app.call(.get, "/api/v1/installs/\(id)", token: f.member)
                let config = try #require(listed["config"] as? [String: Any])
                #expect(!config.isEmpty && NSDictionary(dictionary: config).isEqual(to: one.json["config"] as? [String: Any] ?? [:]), "\(listed) against \(one.text)")
            }
            expectProblem(try await app.call(.get, "/api/v1/installs?cursor=nope", token: f.member), .unprocessableContent, "invalid_request")
            // Uninstall frees the slot and the app can be installed again.
            let first = try #require((list.json["data"] as? [[String: Any]])?.first?["id"] as? String)
            #expect(try await app.call(.delete, "/api/v1/installs/\(first)", token: f.owner).status == .ok)
            #expect(try await app.install("free-app-6", token: f.owner).status == .created)
        }
    }

    @Test(arguments: TestEngines.all)
    func lifecycleEventsUpgradeAndUninstall(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let f = try await app.installFixture()
            #expect(try await app.call(.get, "/api/v1/apps/acme-crm", token: f.owner).status == .ok)
            let created = try await app.call(.post, "/api/v1/installs", token: f.admin, json: ["app": "acme-crm", "config": ["api_key": "sk-value-7731"]],
                                             headers: [HTTPField.Name("X-Request-Id")!: "req-install-1"])
            let id = try #require(created.json["id"] as? String)
            #expect(try await app.call(.post, "/api/v1/installs/\(id)/disable", token: f.admin).json["status"] as? String == "disabled")
            #expect(try await app.call(.post, "/api/v1/installs/\(id)/disable", token: f.admin).status == .ok)   // idempotent, no second event
            #expect(try await app.call(.post, "/api/v1/installs/\(id)/enable", token: f.admin).json["status"] as? String == "active")
            _ = try await app.call(.patch, "/api/v1/installs/\(id)/config", token: f.admin, json: ["verbose": true])

            // The vendor publishes 2.0.0 asking for one more scope and a new required field.
            let vendorToken = try await vendorToken(app)
            var v2 = configuredManifest("acme-crm", version: "2.0.0", scopes: ["kv:read", "kv:write"],
                                        extraFields: [["key": "team", "label": "Team", "type": "string", "required": true]])
            v2["name"] = "Acme CRM 2"
            #expect(try await app.call(.put, "/api/v1/developer/apps/acme-crm", token: vendorToken, json: v2).status == .ok)
            let refused = try await app.call(.post, "/api/v1/installs/\(id)/upgrade", token: f.admin, json: ["version": "2.0.0"])
            expectProblem(refused, .conflict, "scopes_not_accepted")
            #expect((refused.json["detail"] as? String)?.contains("kv:write") == true)
            expectProblem(try await app.call(.post, "/api/v1/installs/\(id)/upgrade", token: f.admin, json: ["version": "2.0.0", "accept_scopes": ["kv:write"]]),
                          .unprocessableContent, "invalid_config")
            let upgraded = try await app.call(.post, "/api/v1/installs/\(id)/upgrade", token: f.admin,
                                              json: ["version": "2.0.0", "accept_scopes": ["kv:write"], "config": ["team": "blue"]])
            #expect(upgraded.status == .ok, "\(upgraded.text)")
            #expect(upgraded.json["version"] as? String == "2.0.0")
            #expect(upgraded.json["scopes"] as? [String] == ["kv:read", "kv:write"])
            expectProblem(try await app.call(.post, "/api/v1/installs/\(id)/upgrade", token: f.admin, json: ["version": "1.0.0"]), .conflict, "version_not_newer")
            #expect(try await app.runtime.installs.configInClear(id)["api_key"] == .string("sk-value-7731"))   // config carried over

            #expect(try await app.call(.delete, "/api/v1/installs/\(id)", token: f.admin).json["status"] as? String == "uninstalled")
            expectProblem(try await app.call(.get, "/api/v1/installs/\(id)", token: f.admin), .notFound, "not_found")
            let (events, audit, sealed) = try await app.runtime.database.read { db in
                (try await OutboxStore.events(install: id, on: db),
                 try await AuditStore.rows(org: f.org, target: id, on: db),
                 try await SealedValueStore.all(owner: id, on: db))
            }
            #expect(events.map(\.type) == ["app.installed", "app.disabled", "app.enabled", "install.config_updated", "install.upgraded", "app.uninstalled"])
            #expect(audit.map(\.action) == events.map(\.type))
            #expect(audit.first?.requestId == "req-install-1")
            #expect(sealed.isEmpty)
            for event in events {
                #expect(event.id.hasPrefix("msg_"))
                let payload = try JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as! [String: Any]
                #expect(payload["type"] as? String == event.type)
                #expect((payload["data"] as? [String: Any])?["install_id"] as? String == id)
                // Config values never travel in events (the values are chosen so that no random id can contain them).
                #expect(!event.payload.contains("sk-value-7731") && !event.payload.contains("\"blue\""))
            }
        }
    }

    @Test func oauthAppsStartPendingAndUnlistedAppsTakeNoNewInstalls() async throws {
        try await withApp(.sqlite) { app in
            try await app.runtime.database.transaction { db in
                try await ProviderStore.upsert(key: "test-provider", definitionJSON: "{}", source: "test", at: 0, on: db)
            }
            let f = try await app.installFixture(apps: [configuredManifest("oauth-app", oauth: true), configuredManifest("fading-app")])
            let created = try await app.install("oauth-app", token: f.owner)
            #expect(created.json["status"] as? String == "pending_oauth")
            let vendor = try await vendorToken(app)
            #expect(try await app.call(.post, "/api/v1/developer/apps/fading-app/unlist", token: vendor).status == .ok)
            expectProblem(try await app.install("fading-app", token: f.owner), .conflict, "app_unlisted")
        }
    }

    /// The vendor org's owner token, found through a fresh token on the app's developer org.
    func vendorToken(_ app: AppHarness) async throws -> String {
        let found = try await app.runtime.database.read { db -> AppRecord? in
            if let app = try await AppStore.find(key: "acme-crm", on: db) { return app }
            return try await AppStore.find(key: "fading-app", on: db)
        }
        let appRecord = try #require(found)
        let token = try await app.call(.post, "/api/v1/orgs/\(appRecord.developerOrgId)/tokens", token: app.operatorToken, json: ["name": "vendor", "role": "owner"])
        return try #require(token.json["token"] as? String)
    }
}
