import Foundation
import HTTPTypes
import HummingbirdTesting
import MercatoCore
import MercatoHooks
import MercatoHooksTesting
import MercatoStorage
import MercatoTestSupport
import NIOCore
import SQLKit
import Testing

/// Inbound provider webhooks over HTTP (CONTRACT §11), on both engines: the host's checks
/// (install, declared provider, size) and the plugin's (signature, dedupe, outbox).
@Suite("Inbound provider webhooks over HTTP")
struct InboundTests {
    struct Receiver {
        let installID: String
        let secrets: [String: String]
        let adminToken: String
    }

    /// An app declaring `providers`, each with its own secret field, installed in a customer org.
    static func receiver(_ app: AppHarness, key: String, providers: [String]) async throws -> Receiver {
        let (_, vendor) = try await app.makeOrg(plan: "enterprise", name: "Vendor \(key)")
        var m = manifest(key)
        m["events"] = ["inbound.received"]
        let fields = providers.map { "\($0.replacingOccurrences(of: "-", with: "_"))_secret" }
        m["config"] = fields.map { ["key": $0, "label": $0, "type": "secret"] } + [["key": "note", "label": "Note", "type": "string"]]
        m["inbound"] = zip(providers, fields).map { ["provider": $0, "secret_field": $1] }
        _ = try await app.registerApp(m, token: vendor)
        _ = try await app.call(.post, "/api/v1/developer/apps/\(key)/publish", token: vendor)
        let (_, owner) = try await app.makeOrg(plan: "pro", name: "Customer \(key)")
        var secrets: [String: String] = [:]
        var config: [String: String] = ["note": "hello"]
        for (provider, field) in zip(providers, fields) {
            secrets[provider] = InboundSigner.secret(for: provider, seed: key)
            config[field] = secrets[provider]
        }
        let installed = try await app.call(.post, "/api/v1/installs", token: owner, json: ["app": key, "config": config])
        #expect(installed.status == .created, "\(installed.text)")
        return Receiver(installID: installed.json["id"] as! String, secrets: secrets, adminToken: owner)
    }

    static func post(_ app: AppHarness, _ path: String, headers: [String: String], body: [UInt8]) async throws -> Answer {
        var fields = HTTPFields()
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        fields[.contentType] = "application/json"
        return try await app.client.execute(uri: path, method: .post, headers: fields, body: ByteBuffer(bytes: body)) { response in
            Answer(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }

    static func events(_ app: AppHarness, install: String) async throws -> [[String: Any]] {
        try await app.runtime.database.read { db in
            try await db.raw("SELECT payload FROM outbox_events WHERE install_id = \(bind: install) AND type = 'inbound.received' ORDER BY id").all()
                .map { try $0.decode(column: "payload", as: String.self) }
        }.map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) ?? [:] }
    }

    /// Everything the plugin keeps for `install`: its events' records and `seen:` notes.
    static func storedCount(_ app: AppHarness, install: String) async throws -> Int {
        try await app.runtime.database.read { db in
            try await db.raw("SELECT COUNT(*) AS n FROM plugin_kv WHERE plugin_id = 'inbound' AND install_id = \(bind: install)").first()?
                .decode(column: "n", as: Int.self) ?? 0
        }
    }

    @Test(arguments: TestEngines.all)
    func everySchemeEndToEnd(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let providers = InboundSchemes.known
            let r = try await Self.receiver(app, key: "inbound-all", providers: providers)
            let other = try await Self.receiver(app, key: "inbound-other", providers: providers)
            let now = Int(Date().timeIntervalSince1970)
            for provider in providers {
                let secret = r.secrets[provider]!
                let path = "/api/v1/inbound/\(r.installID)/\(provider)"
                let body = InboundSigner.body(provider: provider, eventID: "evt_\(provider)")
                let headers = InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_\(provider)", timestamp: now)

                // Bad ones first: 401, nothing stored.
                let wrong = InboundSigner.headers(provider: provider, secret: InboundSigner.secret(for: provider, seed: "wrong"), body: body,
                                                  eventID: "evt_\(provider)", timestamp: now)
                expectProblem(try await Self.post(app, path, headers: wrong, body: body), .unauthorized, "invalid_signature")
                expectProblem(try await Self.post(app, path, headers: headers, body: InboundSigner.body(provider: provider, eventID: "evt_\(provider)", amount: 7)),
                              .unauthorized, "invalid_signature")
                expectProblem(try await Self.post(app, path, headers: headers.filter { $0.key != InboundSigner.signatureHeader(provider) }, body: body),
                              .unauthorized, "invalid_signature")
                if InboundSigner.signsTimestamp(provider) {
                    let stale = InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_\(provider)", timestamp: now - 400)
                    expectProblem(try await Self.post(app, path, headers: stale, body: body), .unauthorized, "invalid_signature")
                }
                // Signed for this install, sent to another install's URL: that install's secret differs.
                expectProblem(try await Self.post(app, "/api/v1/inbound/\(other.installID)/\(provider)", headers: headers, body: body),
                              .unauthorized, "invalid_signature")
                // Each provider before this one: its event's record and its `seen:` note.
                #expect(try await Self.storedCount(app, install: r.installID) == 2 * providers.firstIndex(of: provider)!)

                // The good one: 200, stored, one event; again: duplicate, no second event.
                let first = try await Self.post(app, path, headers: headers, body: body)
                #expect(first.status == .ok, "\(provider): \(first.text)")
                #expect((first.json["id"] as? String)?.hasPrefix("inb_") == true)
                #expect(first.json["duplicate"] as? Bool == false)
                let again = try await Self.post(app, path, headers: headers, body: body)
                #expect(again.status == .ok)
                #expect(again.json["duplicate"] as? Bool == true)
                #expect(again.json["id"] as? String == first.json["id"] as? String)
            }
            let events = try await Self.events(app, install: r.installID)
            #expect(events.count == providers.count)
            for (event, provider) in zip(events, providers) {
                let data = try #require(event["data"] as? [String: Any])
                #expect(event["type"] as? String == "inbound.received")
                #expect(data["provider"] as? String == provider)
                #expect(data["install_id"] as? String == r.installID)
                #expect(data["event_id"] as? String == InboundSigner.expectedEventID(provider: provider, eventID: "evt_\(provider)"))
                #expect(data["received_at"] is String)
                #expect(data["payload"] is [String: Any])
            }
            #expect(try await Self.events(app, install: other.installID).isEmpty)
            // No plugin hook takes `inbound.received`: its rows are written with their hooks done,
            // so the hook dispatcher never claims, reads and completes them one by one.
            let doneAtOnce = try await app.runtime.database.read { db in
                try await db.raw("SELECT COUNT(*) AS n FROM outbox_events WHERE type = 'inbound.received' AND hooks_done_at = created_at").first()!
                    .decode(column: "n", as: Int.self)
            }
            #expect(doneAtOnce == providers.count)
            // No secret in any event or log line.
            let everything = try await app.runtime.database.read { db in
                try await db.raw("SELECT payload FROM outbox_events").all().map { try $0.decode(column: "payload", as: String.self) }
            }.joined() + app.logs.all.joined(separator: "\n")
            for secret in r.secrets.values { #expect(!everything.contains(secret)) }
        }
    }

    /// A record the plugin kept before version 1.3.0 (under the event id's SHA-256) still makes
    /// the provider's retry a duplicate after the upgrade; new events are kept under their id.
    @Test(arguments: TestEngines.all)
    func anEventRecordedBeforeTheUpgradeStaysADuplicate(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let r = try await Self.receiver(app, key: "inbound-legacy", providers: ["github"])
            let legacy = "evt:github:" + WebhookCrypto.hex(WebhookCrypto.sha256(Array("d-legacy".utf8)))
            let storage = HostPluginStorage(database: app.runtime.database, plugin: "inbound", install: r.installID, org: "org_unused", clock: .system)
            _ = try await storage.set(legacy, .object(["id": .string("inb_before")]), expiresAt: Date().addingTimeInterval(86_400))
            let path = "/api/v1/inbound/\(r.installID)/github"
            func send(_ id: String) async throws -> Answer {
                let body = InboundSigner.body(provider: "github", eventID: id)
                return try await Self.post(app, path, headers: InboundSigner.headers(provider: "github", secret: r.secrets["github"]!, body: body,
                                                                                     eventID: id, timestamp: Int(Date().timeIntervalSince1970)), body: body)
            }
            let retried = try await send("d-legacy")
            #expect(retried.status == .ok, "\(retried.text)")
            #expect(retried.json["duplicate"] as? Bool == true && retried.json["id"] as? String == "inb_before")
            #expect(try await Self.events(app, install: r.installID).isEmpty)
            let fresh = try await send("d-new")
            #expect(fresh.json["duplicate"] as? Bool == false)
            #expect(try await Self.events(app, install: r.installID).count == 1)
            let keys = try await storage.keys(prefix: "", after: nil, limit: 10)
            #expect(Set(keys) == [legacy, "in:github:=d-new", "seen:github"])
        }
    }

    /// The app receives the provider's JSON as it was sent: its member order and numbers (an
    /// integer past 2^53, `1.50`, `1e2`) kept, only a byte order mark and the whitespace around
    /// it left out; a body that is not JSON arrives as a string.
    @Test(arguments: TestEngines.all)
    func thePayloadIsTheProvidersTextAsSent(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let r = try await Self.receiver(app, key: "inbound-verbatim", providers: ["standard-webhooks", "github"])
            let now = Int(Date().timeIntervalSince1970)
            let json = #"{"type":"order.paid","zeta":1,"amount":12345678901234567890,"alpha":{"b":1.50,"a":[1e2, "\u00e9\n"]}}"#
            let body = [0xEF, 0xBB, 0xBF] + Array((" \n" + json + "\n").utf8)
            let path = "/api/v1/inbound/\(r.installID)/standard-webhooks"
            let headers = InboundSigner.headers(provider: "standard-webhooks", secret: r.secrets["standard-webhooks"]!, body: body,
                                                eventID: "evt_verbatim", timestamp: now)
            let first = try await Self.post(app, path, headers: headers, body: body)
            #expect(first.status == .ok, "\(first.text)")
            let plain = Array("zen=keep it logically awesome".utf8)
            let githubHeaders = InboundSigner.headers(provider: "github", secret: r.secrets["github"]!, body: plain, eventID: "evt_plain", timestamp: now)
            #expect(try await Self.post(app, "/api/v1/inbound/\(r.installID)/github", headers: githubHeaders, body: plain).status == .ok)

            let texts = try await app.runtime.database.read { db in
                try await db.raw("SELECT payload FROM outbox_events WHERE install_id = \(bind: r.installID) AND type = 'inbound.received' ORDER BY id").all()
                    .map { try $0.decode(column: "payload", as: String.self) }
            }
            try #require(texts.count == 2)
            #expect(texts[0].contains(#""payload":"# + json + ","), "\(texts[0])")
            // Still one JSON document, which reads back to the same event.
            let event = try #require(try JSONSerialization.jsonObject(with: Data(texts[0].utf8)) as? [String: Any])
            let data = try #require(event["data"] as? [String: Any])
            #expect((data["payload"] as? [String: Any])?["type"] as? String == "order.paid")
            #expect(data["event_type"] as? String == "order.paid")
            #expect(texts[1].contains(#""payload":"zen=keep it logically awesome""#), "\(texts[1])")
        }
    }

    /// The org admin finds the receiving URL and which setting takes the provider's secret on
    /// the app's page; the secret itself is never on it.
    @Test(arguments: TestEngines.all)
    func theAppPageShowsTheReceivingURL(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let r = try await Self.receiver(app, key: "inbound-page", providers: ["stripe"])
            let org = try #require(try await app.call(.get, "/api/v1/installs/\(r.installID)", token: r.adminToken).json["org_id"] as? String)
            let admin = try await app.signedIn(org: org, role: "admin", by: r.adminToken, email: "admin@inbound.example")
            let page = try await admin.get("/marketplace/inbound-page")
            #expect(page.status == .ok)
            #expect(page.text.contains("Receiving URL for Stripe webhooks"))
            #expect(page.text.contains("a webhook endpoint in Stripe&#39;s Dashboard") || page.text.contains("a webhook endpoint in Stripe's Dashboard"))
            #expect(page.text.contains("/api/v1/inbound/\(r.installID)/stripe"))
            #expect(page.text.contains("<strong>stripe_secret</strong>"))
            #expect(!page.text.contains(r.secrets["stripe"]!))
            #expect(!page.text.contains("Not receiving yet"), "its secret is set")
            // A member sees no settings, and no receiving URL either.
            let member = try await app.signedIn(org: org, role: "member", by: r.adminToken, email: "member@inbound.example")
            #expect(!(try await member.get("/marketplace/inbound-page")).text.contains("/api/v1/inbound/"))
        }
    }

    /// `GET /api/v1/inbound/{install_id}` and the install page: per provider the last event
    /// stored and the last refusal with its reason (never the secret), written at most once a
    /// minute per kind; another org's install is 404.
    @Test(arguments: TestEngines.all)
    func whatTheReceivingURLLastGotIsShownToItsOrg(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let r = try await Self.receiver(app, key: "inbound-status", providers: ["stripe", "github"])
            let status = "/api/v1/inbound/\(r.installID)"
            func notes() async throws -> [String: [String: Any]] {
                let answer = try await app.call(.get, status, token: r.adminToken)
                #expect(answer.status == .ok, "\(answer.text)")
                for secret in r.secrets.values { #expect(!answer.text.contains(secret)) }
                let data = try #require(answer.json["data"] as? [[String: Any]])
                return Dictionary(uniqueKeysWithValues: data.map { ($0["provider"] as! String, $0) })
            }
            #expect(try await notes().isEmpty)

            let now = Int(Date().timeIntervalSince1970)
            func send(_ provider: String, _ id: String, secret: String? = nil) async throws -> Answer {
                let body = InboundSigner.body(provider: provider, eventID: id)
                return try await Self.post(app, "\(status)/\(provider)",
                                           headers: InboundSigner.headers(provider: provider, secret: secret ?? r.secrets[provider]!, body: body, eventID: id, timestamp: now),
                                           body: body)
            }
            // Signed with another secret (the admin pasted the wrong one): refused, and said so.
            expectProblem(try await send("stripe", "evt_a", secret: InboundSigner.secret(for: "stripe", seed: "wrong")), .unauthorized, "invalid_signature")
            var stripe = try #require(try await notes()["stripe"])
            #expect(stripe["last_received"] is NSNull)
            let refused = try #require(stripe["last_refused"] as? [String: Any])
            #expect(refused["code"] as? String == "invalid_signature")
            #expect((refused["detail"] as? String)?.contains("no signature matches") == true)
            #expect((refused["at"] as? String)?.hasSuffix("Z") == true)

            // The right secret: the event is noted; a second one within the minute is stored and
            // delivered but not noted again.
            #expect(try await send("stripe", "evt_b").status == .ok)
            #expect(try await send("stripe", "evt_c").status == .ok)
            stripe = try #require(try await notes()["stripe"])
            let received = try #require(stripe["last_received"] as? [String: Any])
            #expect(received["event_id"] as? String == "evt_b")
            #expect(received["event_type"] as? String == "payment_intent.succeeded")
            #expect(stripe["last_refused"] is [String: Any], "the older refusal stays in the answer")
            #expect(try await Self.events(app, install: r.installID).count == 2)

            // GitHub was only ever refused.
            expectProblem(try await send("github", "d-1", secret: "not-the-secret"), .unauthorized, "invalid_signature")

            // The page: Stripe's last event (its refusal came before it, so no warning); GitHub's refusal.
            let org = try #require(try await app.call(.get, "/api/v1/installs/\(r.installID)", token: r.adminToken).json["org_id"] as? String)
            let admin = try await app.signedIn(org: org, role: "admin", by: r.adminToken, email: "admin@inbound-status.example")
            let page = try await admin.get("/marketplace/inbound-status")
            #expect(page.status == .ok)
            #expect(page.text.contains(#"id="inbound-received-stripe">Last event received"#))
            #expect(page.text.contains("<code>payment_intent.succeeded</code>"))
            #expect(!page.text.contains(#"id="inbound-refused-stripe""#))
            #expect(page.text.contains(#"id="inbound-received-github">No event received yet"#))
            #expect(page.text.contains(#"id="inbound-refused-github""#))
            #expect(page.text.contains("(<code>invalid_signature</code>)"))
            for secret in r.secrets.values { #expect(!page.text.contains(secret)) }

            // Another org's admin, or no such install: 404.
            let (_, stranger) = try await app.makeOrg(name: "Stranger")
            expectProblem(try await app.call(.get, status, token: stranger), .notFound, "not_found")
            expectProblem(try await app.call(.get, "/api/v1/inbound/ins_nothing", token: r.adminToken), .notFound, "not_found")

            // Uninstalled: the install's notes go with it, those in memory too.
            #expect(try await app.call(.delete, "/api/v1/installs/\(r.installID)", token: r.adminToken).status == .ok)
            while try await app.runtime.hooks.dispatchPending() > 0 {}
            #expect(try await notes().isEmpty)
        }
    }

    @Test(arguments: TestEngines.all)
    func theHostsChecksComeFirst(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let r = try await Self.receiver(app, key: "inbound-host", providers: ["github"])
            // The install shows where the provider posts.
            let shown = try await app.call(.get, "/api/v1/installs/\(r.installID)", token: r.adminToken)
            let inbound = try #require(shown.json["inbound"] as? [[String: Any]])
            #expect(inbound.count == 1)
            #expect(inbound.first?["provider"] as? String == "github")
            #expect((inbound.first?["url"] as? String)?.hasSuffix("/api/v1/inbound/\(r.installID)/github") == true)
            #expect(!shown.text.contains(r.secrets["github"]!))
            let now = Int(Date().timeIntervalSince1970)
            let body = InboundSigner.body(provider: "github", eventID: "d1")
            let headers = InboundSigner.headers(provider: "github", secret: r.secrets["github"]!, body: body, eventID: "d1", timestamp: now)
            // Unknown install, an id that is not one, a provider the install does not declare, a scheme nobody knows: 404.
            expectProblem(try await Self.post(app, "/api/v1/inbound/ins_00000000000000000000000000/github", headers: headers, body: body), .notFound, "not_found")
            expectProblem(try await Self.post(app, "/api/v1/inbound/nonsense/github", headers: headers, body: body), .notFound, "not_found")
            expectProblem(try await Self.post(app, "/api/v1/inbound/\(r.installID)/stripe", headers: headers, body: body), .notFound, "not_found")
            expectProblem(try await Self.post(app, "/api/v1/inbound/\(r.installID)/paypal", headers: headers, body: body), .notFound, "not_found")
            // Over 1 MiB: 413, nothing stored.
            let big = Array(#"{"pad":""#.utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 1024 * 1024) + Array(#""}"#.utf8)
            let bigHeaders = InboundSigner.headers(provider: "github", secret: r.secrets["github"]!, body: big, eventID: "d2", timestamp: now)
            expectProblem(try await Self.post(app, "/api/v1/inbound/\(r.installID)/github", headers: bigHeaders, body: big), .contentTooLarge, "payload_too_large")
            #expect(try await Self.storedCount(app, install: r.installID) == 0)
            // A disabled install receives nothing; enabled again, it does.
            #expect(try await app.call(.post, "/api/v1/installs/\(r.installID)/disable", token: r.adminToken).status == .ok)
            expectProblem(try await Self.post(app, "/api/v1/inbound/\(r.installID)/github", headers: headers, body: body), .notFound, "not_found")
            let enabled = try await app.call(.post, "/api/v1/installs/\(r.installID)/enable", token: r.adminToken)
            #expect(enabled.status == .ok)
            // The install's read writes its answer itself: the same bytes and type as the
            // encoder's answer to the enable just before (config, scopes, times, inbound URLs).
            let read = try await app.call(.get, "/api/v1/installs/\(r.installID)", token: r.adminToken)
            #expect(read.text == enabled.text)
            #expect(read.headers[.contentType] == enabled.headers[.contentType])
            #expect(try await Self.post(app, "/api/v1/inbound/\(r.installID)/github", headers: headers, body: body).status == .ok)
            // The admin pastes a new secret: the next request is checked against it (the opened
            // secret kept between requests follows the install's change at once).
            let rotated = InboundSigner.secret(for: "github", seed: "rotated")
            #expect(try await app.call(.patch, "/api/v1/installs/\(r.installID)/config", token: r.adminToken, json: ["github_secret": rotated]).status == .ok)
            let next = InboundSigner.body(provider: "github", eventID: "d3")
            let old = InboundSigner.headers(provider: "github", secret: r.secrets["github"]!, body: next, eventID: "d3", timestamp: now)
            expectProblem(try await Self.post(app, "/api/v1/inbound/\(r.installID)/github", headers: old, body: next), .unauthorized, "invalid_signature")
            let new = InboundSigner.headers(provider: "github", secret: rotated, body: next, eventID: "d3", timestamp: now)
            #expect(try await Self.post(app, "/api/v1/inbound/\(r.installID)/github", headers: new, body: next).status == .ok)
            // Uninstalled: 404, and the plugin's records go with the install.
            #expect(try await app.call(.delete, "/api/v1/installs/\(r.installID)", token: r.adminToken).status == .ok)
            expectProblem(try await Self.post(app, "/api/v1/inbound/\(r.installID)/github", headers: headers, body: body), .notFound, "not_found")
            while try await app.runtime.hooks.dispatchPending() > 0 {}
            #expect(try await Self.storedCount(app, install: r.installID) == 0)
        }
    }

    @Test(arguments: TestEngines.all)
    func eachInstallHasItsOwnRateAllowance(engine: StorageEngine) async throws {
        // The clock stands still, so the allowance does not refill however slow the requests.
        try await withApp(engine, clock: ManualClock().wallClock) { app in
            let r = try await Self.receiver(app, key: "inbound-flood", providers: ["razorpay"])
            let other = try await Self.receiver(app, key: "inbound-calm", providers: ["razorpay"])
            let body = InboundSigner.body(provider: "razorpay", eventID: "e")
            let forged = ["X-Razorpay-Signature": String(repeating: "0", count: 64), "X-Razorpay-Event-Id": "e"]
            var statuses: [Int: Int] = [:]
            // The allowance is 200 at once, 50 a second (PluginRoutes.publicLimit, from the settings' defaults).
            for _ in 0 ..< 220 {
                statuses[Int(try await Self.post(app, "/api/v1/inbound/\(r.installID)/razorpay", headers: forged, body: body).status.code), default: 0] += 1
            }
            #expect(statuses == [401: 200, 429: 20])
            let limited = try await Self.post(app, "/api/v1/inbound/\(r.installID)/razorpay", headers: forged, body: body)
            expectProblem(limited, .tooManyRequests, "rate_limited")
            #expect(limited.headers[.retryAfter] != nil)
            // Another install is not affected.
            let headers = InboundSigner.headers(provider: "razorpay", secret: other.secrets["razorpay"]!, body: body, eventID: "e", timestamp: 0)
            #expect(try await Self.post(app, "/api/v1/inbound/\(other.installID)/razorpay", headers: headers, body: body).status == .ok)
        }
    }

    @Test func aManifestDeclaringAnUnknownProviderIsRefused() async throws {
        try await withApp(.sqlite) { app in
            let (_, vendor) = try await app.makeOrg(plan: "enterprise", name: "Vendor")
            var m = manifest("inbound-bad")
            m["inbound"] = [["provider": "paypal", "secret_field": "api_key"], ["provider": "github", "secret_field": "missing"]]
            let answer = try await app.call(.post, "/api/v1/developer/apps", token: vendor, json: m)
            expectProblem(answer, .unprocessableContent, "invalid_manifest")
            #expect(answer.text.contains("inbound[0].provider"))
            #expect(answer.text.contains("inbound[1].secret_field"))
        }
    }
}
