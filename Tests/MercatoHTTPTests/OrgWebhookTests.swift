import Foundation
import HTTPTypes
import HummingbirdTesting
@testable import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Synchronization
import Testing

@Suite("Org webhook endpoints (CONTRACT §10): the org's own receivers on the one delivery path")
struct OrgWebhookTests {
    func service(_ app: AppHarness, clock: ManualClock, clients: DeliveryClients, policy: DeliveryPolicy = DeliveryPolicy()) -> DeliveryService {
        DeliveryService(database: app.runtime.database, registry: app.runtime.registry, clients: clients, clock: clock.wallClock,
                        logger: TestDatabase.logger, policy: policy, addressGuard: AddressGuard(allowPrivate: true))
    }

    /// A receiver on loopback, the app (private webhook addresses allowed, as the operator may)
    /// on `engine` with a hand-moved clock, an installed app that may create tasks, and a
    /// delivery service; the delivery clients are shut down however `body` ends.
    func withRig(_ engine: StorageEngine, policy: DeliveryPolicy = DeliveryPolicy(),
                 _ body: @escaping @Sendable (AppHarness, ManualClock, Receiver, Int, CommandSender, DeliveryService) async throws -> Void) async throws {
        let clock = ManualClock(Date())
        let receiver = Receiver()
        try await receiver.serve { port in
            try await withApp(engine, mode: .live, clock: clock.wallClock, plugins: GatewayTests.plugins,
                              environment: ["MERCATO_ALLOW_PRIVATE_WEBHOOKS": "1"]) { app in
                let clients = DeliveryClients(grace: .seconds(1))
                do {
                    let s = try await app.commandSender(scopes: ["tasks:write"], key: "tasks-app")
                    try await body(app, clock, receiver, port, s, service(app, clock: clock, clients: clients, policy: policy))
                } catch {
                    try? await clients.shutdown()
                    throw error
                }
                try await clients.shutdown()
            }
        }
    }

    func verifies(_ r: Receiver.Received, with secrets: [String]) -> Bool {
        StandardWebhooks.verify(header: r.signature, content: StandardWebhooks.signedContent(id: r.id, timestamp: r.timestamp, body: r.body),
                                secrets: secrets, publicKey: nil)
    }

    func type(_ r: Receiver.Received) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])?["type"] as? String
    }

    @Test(arguments: TestEngines.all)
    func anAdminSubscribesAReceiverThatVerifiesInstallAndPluginEventsRotationAndTest(engine: StorageEngine) async throws {
        try await withRig(engine) { app, clock, receiver, port, s, deliveries in
            let admin = s.adminToken
            let types = try await app.call(.get, "/api/v1/webhooks/event_types", token: admin)
            let listed = try #require(types.json["data"] as? [String])
            #expect(listed.contains("app.installed") && listed.contains("task.created") && listed.contains("connection.refresh_failed"), "\(types.text)")

            let created = try await app.call(.post, "/api/v1/webhooks", token: admin, json: [
                "url": "http://127.0.0.1:\(port)/hook", "events": ["app.installed", "task.created"], "description": "CRM sync",
            ])
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.json["id"] as? String)
            #expect(id.hasPrefix("whe_"))
            let secret = try #require(created.json["secret"] as? String)
            #expect(secret.hasPrefix("whsec_"))
            #expect(created.json["status"] as? String == "active")
            let shown = try await app.call(.get, "/api/v1/webhooks/\(id)", token: admin)
            #expect(shown.json["secret"] == nil && !shown.text.contains(secret), "the secret is shown once")
            #expect(shown.json["events"] as? [String] == ["app.installed", "task.created"])
            #expect(!app.logs.all.joined().contains(secret))

            // The app creates a task; the org changes the install's config (a type not subscribed).
            let (h, b) = try s.sign(["install_id": s.installID, "command": "tasks.create", "args": ["title": "Call the customer"]])
            #expect(try await app.send(h, b).status == .ok)
            _ = try await app.call(.patch, "/api/v1/installs/\(s.installID)/config", token: admin, json: ["token": "another-secret"])
            try await deliveries.fanOut()
            try await deliveries.deliverDue()
            #expect(receiver.count == 2)
            let got = receiver.received.withLock { $0 }
            #expect(Set(got.compactMap(type)) == ["app.installed", "task.created"])
            for r in got { #expect(verifies(r, with: [secret])) }
            #expect(!got.contains { verifies($0, with: ["whsec_" + Data(repeating: 7, count: 32).base64EncodedString()]) })
            let task = try #require(got.first { type($0) == "task.created" })
            let payload = try #require(try JSONSerialization.jsonObject(with: Data(task.body)) as? [String: Any])
            #expect((payload["data"] as? [String: Any])?["install_id"] as? String == s.installID, "\(payload)")
            #expect(!String(decoding: task.body, as: UTF8.self).contains("another-secret"))

            // Rotation: both secrets sign the test event, each alone verifies it.
            let rotated = try await app.call(.post, "/api/v1/webhooks/\(id)/secret/rotate", token: admin)
            let newSecret = try #require(rotated.json["secret"] as? String)
            #expect(newSecret != secret && newSecret.hasPrefix("whsec_"))
            #expect(rotated.json["previous_valid_until"] is String)
            let test = try await app.call(.post, "/api/v1/webhooks/\(id)/test", token: admin)
            #expect(test.status == .accepted, "\(test.text)")
            #expect(test.json["type"] as? String == "webhook.test")
            try await deliveries.deliverDue()
            let probe = try #require(receiver.received.withLock { $0.last })
            #expect(type(probe) == "webhook.test")
            #expect(probe.signature.split(separator: " ").count == 2)
            #expect(verifies(probe, with: [secret]) && verifies(probe, with: [newSecret]))
            #expect(receiver.count == 3, "a test goes to that endpoint only")
            // After the overlap only the new secret signs.
            clock.advance(by: 24 * 3600 + 1)
            let retry = try await app.call(.post, "/api/v1/webhooks/\(id)/deliveries/\(probe.id)/retry", token: admin)
            #expect(retry.json["status"] as? String == "pending", "\(retry.text)")
            try await deliveries.deliverDue()
            #expect(receiver.count == 4)
            let again = try #require(receiver.received.withLock { $0.last })
            #expect(again.id == probe.id, "a retry keeps its webhook-id")
            #expect(verifies(again, with: [newSecret]) && !verifies(again, with: [secret]))

            // The endpoint's log: its deliveries only, with the status filter and the attempts.
            let log = try await app.call(.get, "/api/v1/webhooks/\(id)/deliveries?status=delivered&limit=2", token: admin)
            #expect((log.json["data"] as? [Any])?.count == 2, "\(log.text)")
            let next = try #require(log.json["next_cursor"] as? String)
            let rest = try await app.call(.get, "/api/v1/webhooks/\(id)/deliveries?status=delivered&cursor=\(next)", token: admin)
            #expect((rest.json["data"] as? [Any])?.count == 1)
            let one = try await app.call(.get, "/api/v1/webhooks/\(id)/deliveries/\(probe.id)", token: admin)
            #expect((one.json["attempt_log"] as? [[String: Any]])?.count == 2, "\(one.text)")
            expectProblem(try await app.call(.get, "/api/v1/webhooks/\(id)/deliveries?status=odd", token: admin), .unprocessableContent, "invalid_request")
            expectProblem(try await app.call(.post, "/api/v1/webhooks/\(id)/deliveries/msg_nope/retry", token: admin), .notFound, "not_found")
            // The app's developer sees nothing of the org's endpoint in the app's own log.
            let vendorLog = try await app.call(.get, "/api/v1/developer/apps/\(s.appKey)/deliveries", token: s.vendorToken)
            let vendorRows = try #require(vendorLog.json["data"] as? [[String: Any]], "\(vendorLog.text)")
            #expect(vendorRows.map { $0["type"] as? String } == ["app.installed"], "only the app's own subscription: \(vendorLog.text)")
        }
    }

    /// A plugin's event gets its deliveries in the transaction that writes it: stored already
    /// dispatched, one delivery per receiver that takes its type, nothing left for the pass.
    @Test(arguments: TestEngines.all)
    func aPluginsEventHasItsDeliveriesWhenItsWriteCommits(engine: StorageEngine) async throws {
        try await withRig(engine) { app, clock, receiver, port, s, deliveries in
            let admin = s.adminToken
            var endpoints: [String] = []
            for events in [["task.created"], ["app.installed"], ["*"]] {
                let created = try await app.call(.post, "/api/v1/webhooks", token: admin, json: ["url": "http://127.0.0.1:\(port)/hook", "events": events])
                #expect(created.status == .created, "\(created.text)")
                endpoints.append(try #require(created.json["id"] as? String))
            }
            // What was written before (the install's events) delivered first.
            try await deliveries.fanOut()
            try await deliveries.deliverDue()
            let earlier = receiver.count
            let (h, b) = try s.sign(["install_id": s.installID, "command": "tasks.create", "args": ["title": "Call the customer"]])
            #expect(try await app.send(h, b).status == .ok)

            let (event, dispatched, created, receivers) = try await app.runtime.database.read { db in
                let row = try #require(try await db.raw("SELECT id, dispatched_at, created_at FROM outbox_events WHERE type = 'task.created'").first())
                let id = try row.decode(column: "id", as: String.self)
                let receivers = try await db.raw("SELECT app_id FROM webhook_deliveries WHERE id = \(bind: id)").all().map { try $0.decode(column: "app_id", as: String.self) }
                return (id, try row.decode(column: "dispatched_at", as: Int64?.self), try row.decode(column: "created_at", as: Int64.self), receivers)
            }
            #expect(dispatched == created, "stored dispatched by the write itself")
            #expect(Set(receivers) == [endpoints[0], endpoints[2]], "the endpoints taking task.created, not the one taking app.installed")
            #expect(try await deliveries.fanOut() == 0, "nothing left for the fan-out pass")
            #expect(try await deliveries.deliverDue() == 2)
            let got = receiver.received.withLock { Array($0.dropFirst(earlier)) }
            #expect(got.map(\.id) == [event, event] && got.allSatisfy { type($0) == "task.created" })

            // The other way a plugin emits: a storage create with its event (as the inbound
            // plugin writes a provider's event), routed in the plugin writes' batch.
            let orgID = try #require(try await app.runtime.database.read { try await InstallStore.live(id: s.installID, on: $0) }?.orgId)
            let storage = app.runtime.pluginStorage.storage(plugin: "inbound", install: s.installID, org: orgID)
            #expect(try await storage.create("in:test:=evt_1", .object([:]), expiresAt: nil,
                                             emitting: [EventDraft(type: "inbound.received", data: .object(["event_id": .string("evt_1")]))]))
            let (received, receivedDispatched, receivedReceivers) = try await app.runtime.database.read { db in
                let row = try #require(try await db.raw("SELECT id, dispatched_at FROM outbox_events WHERE type = 'inbound.received'").first())
                let id = try row.decode(column: "id", as: String.self)
                let receivers = try await db.raw("SELECT app_id FROM webhook_deliveries WHERE id = \(bind: id)").all().map { try $0.decode(column: "app_id", as: String.self) }
                return (id, try row.decode(column: "dispatched_at", as: Int64?.self), receivers)
            }
            #expect(receivedDispatched != nil)
            #expect(receivedReceivers == [endpoints[2]], "only the endpoint taking every type")
            #expect(try await deliveries.fanOut() == 0)
            #expect(try await deliveries.deliverDue() == 1)
            #expect(receiver.received.withLock { $0.last?.id } == received)
        }
    }

    /// A plugin's write says whether its events made deliveries, and only then are the
    /// senders woken (each sender's look is a claim in a write transaction): an event no one
    /// takes, as most of an install's provider webhooks, wakes nothing.
    @Test(arguments: TestEngines.all)
    func aPluginWriteSaysWhetherItsEventsMadeDeliveries(engine: StorageEngine) async throws {
        try await withRig(engine) { app, clock, _, port, s, _ in
            let writes = PluginWrites(database: app.runtime.database, clock: clock.wallClock)
            @Sendable func create(_ key: String, events: Int = 1) async throws -> PluginWriteOutcome {
                let at = clock.wallClock.millis
                let drafts = (0 ..< events).map { _ in EventDraft(type: "inbound.received", data: .object(["event_id": .string(key)])) }
                return try await writes.submit(PluginWrite(.put(plugin: "inbound", install: s.installID, org: nil, key: key, value: "{}", quota: 1 << 20,
                                                                at: at, onlyIfAbsent: true), events: try drafts.map { try Outbox.Encoded($0, at: at) }))
            }
            // The tasks app does not subscribe to inbound.received and the org has no endpoint.
            #expect(try await create("in:a") == PluginWriteOutcome(result: .stored(version: 1), madeDeliveries: false))
            let created = try await app.call(.post, "/api/v1/webhooks", token: s.adminToken, json: ["url": "http://127.0.0.1:\(port)/hook", "events": ["*"]])
            #expect(created.status == .created, "\(created.text)")
            #expect(try await create("in:b") == PluginWriteOutcome(result: .stored(version: 1), madeDeliveries: true))
            // Stored without events, or not stored: nothing made, even beside a write that made some.
            async let plain = create("in:c", events: 0)
            async let present = create("in:b")
            async let fresh = create("in:d")
            #expect(try await plain == PluginWriteOutcome(result: .stored(version: 1), madeDeliveries: false))
            #expect(try await present == PluginWriteOutcome(result: .present, madeDeliveries: false))
            #expect(try await fresh == PluginWriteOutcome(result: .stored(version: 1), madeDeliveries: true))
            let rows = try await app.runtime.database.read { try await $0.raw("SELECT id FROM webhook_deliveries WHERE type = 'inbound.received'").all().count }
            #expect(rows == 2, "one delivery each for in:b and in:d")
        }
    }

    @Test(arguments: TestEngines.all)
    func badInputRolesAndOtherOrgsAnswerProblems(engine: StorageEngine) async throws {
        try await withRig(engine) { app, _, _, port, s, _ in
            let admin = s.adminToken
            let url = "http://127.0.0.1:\(port)/hook"
            let unknown = try await app.call(.post, "/api/v1/webhooks", token: admin, json: ["url": url, "events": ["app.installed", "invoice.paid"]])
            expectProblem(unknown, .unprocessableContent, "invalid_request")
            #expect((unknown.json["detail"] as? String)?.contains("invoice.paid") == true, "\(unknown.text)")
            for bad in ["ftp://example.com/x", "http://example.com/hook", "not a url", ""] {
                let answer = try await app.call(.post, "/api/v1/webhooks", token: admin, json: ["url": bad, "events": ["*"]])
                expectProblem(answer, .unprocessableContent, "invalid_request")
                #expect((answer.json["errors"] as? [[String: Any]])?.first?["field"] as? String == "url", "\(bad): \(answer.text)")
            }
            expectProblem(try await app.call(.post, "/api/v1/webhooks", token: admin, json: ["url": url, "events": []]), .unprocessableContent, "invalid_request")
            expectProblem(try await app.call(.post, "/api/v1/webhooks", token: admin, json: ["url": url]), .unprocessableContent, "invalid_request")
            expectProblem(try await app.call(.post, "/api/v1/webhooks", token: admin, raw: "{"), .badRequest, "malformed_json")

            let created = try await app.call(.post, "/api/v1/webhooks", token: admin, json: ["url": url, "events": ["*"]])
            let id = try #require(created.json["id"] as? String, "\(created.text)")
            let patched = try await app.call(.patch, "/api/v1/webhooks/\(id)", token: admin, json: ["events": ["task.created"], "description": "Tasks only"])
            #expect(patched.json["events"] as? [String] == ["task.created"], "\(patched.text)")
            #expect(patched.json["description"] as? String == "Tasks only")
            expectProblem(try await app.call(.patch, "/api/v1/webhooks/\(id)", token: admin, json: ["status": "paused"]), .unprocessableContent, "invalid_request")
            let off = try await app.call(.patch, "/api/v1/webhooks/\(id)", token: admin, json: ["status": "disabled"])
            #expect(off.json["status"] as? String == "disabled", "\(off.text)")
            let on = try await app.call(.patch, "/api/v1/webhooks/\(id)", token: admin, json: ["status": "active"])
            #expect(on.json["status"] as? String == "active")

            // Roles: a member reads the event types only; another org sees 404s.
            let install = try await app.call(.get, "/api/v1/installs/\(s.installID)", token: admin)
            let org = try #require(install.json["org_id"] as? String)
            let member = try await app.makeToken(org: org, role: "member", by: admin)
            #expect(try await app.call(.get, "/api/v1/webhooks/event_types", token: member).status == .ok)
            expectProblem(try await app.call(.get, "/api/v1/webhooks", token: member), .forbidden, "forbidden")
            expectProblem(try await app.call(.post, "/api/v1/webhooks", token: member, json: ["url": url, "events": ["*"]]), .forbidden, "forbidden")
            let (_, other) = try await app.makeOrg(plan: "pro", name: "Other")
            expectProblem(try await app.call(.get, "/api/v1/webhooks/\(id)", token: other), .notFound, "not_found")
            expectProblem(try await app.call(.patch, "/api/v1/webhooks/\(id)", token: other, json: ["status": "disabled"]), .notFound, "not_found")
            expectProblem(try await app.call(.post, "/api/v1/webhooks/\(id)/test", token: other), .notFound, "not_found")
            expectProblem(try await app.call(.post, "/api/v1/webhooks/\(id)/secret/rotate", token: other), .notFound, "not_found")
            expectProblem(try await app.call(.get, "/api/v1/webhooks/\(id)/deliveries", token: other), .notFound, "not_found")
            expectProblem(try await app.call(.delete, "/api/v1/webhooks/\(id)", token: other), .notFound, "not_found")
            #expect((try await app.call(.get, "/api/v1/webhooks", token: other).json["data"] as? [Any])?.isEmpty == true)
            #expect((try await app.call(.get, "/api/v1/webhooks", token: admin).json["data"] as? [Any])?.count == 1)

            #expect(try await app.call(.delete, "/api/v1/webhooks/\(id)", token: admin).status == .ok)
            expectProblem(try await app.call(.get, "/api/v1/webhooks/\(id)", token: admin), .notFound, "not_found")
        }
    }

    /// Private addresses are refused when the operator has not allowed them, as for apps.
    @Test(arguments: TestEngines.all)
    func privateAddressesAreRefusedUnlessTheOperatorAllowsThem(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let (_, owner) = try await app.makeOrg(plan: "pro")
            for url in ["http://127.0.0.1:9/hook", "https://10.0.0.8/hook", "https://169.254.169.254/latest"] {
                let answer = try await app.call(.post, "/api/v1/webhooks", token: owner, json: ["url": url, "events": ["*"]])
                expectProblem(answer, .unprocessableContent, "invalid_request")
                #expect((answer.json["errors"] as? [[String: Any]])?.first?["field"] as? String == "url", "\(url): \(answer.text)")
            }
            let ok = try await app.call(.post, "/api/v1/webhooks", token: owner, json: ["url": "https://93.184.215.14/hook", "events": ["*"]])
            #expect(ok.status == .created, "\(ok.text)")
        }
    }

    /// Five days without a success disable the endpoint; the org's inbox is told once; an admin
    /// enables it again.
    @Test(arguments: TestEngines.all)
    func fiveDaysOfFailuresDisableAnOrgEndpointAndTellTheOrgInbox(engine: StorageEngine) async throws {
        var policy = DeliveryPolicy()
        policy.circuitThreshold = 1000
        try await withRig(engine, policy: policy) { app, clock, receiver, port, s, deliveries in
            let admin = s.adminToken
            let created = try await app.call(.post, "/api/v1/webhooks", token: admin, json: ["url": "http://127.0.0.1:\(port)/hook", "events": ["*"]])
            let id = try #require(created.json["id"] as? String, "\(created.text)")
            receiver.always.withLock { $0 = 500 }
            for day in 0 ..< 6 {
                clock.advance(by: 86_400 + 1)
                _ = try await app.call(.patch, "/api/v1/installs/\(s.installID)/config", token: admin, json: ["token": "t\(day)"])
                try await deliveries.fanOut()
                try await deliveries.deliverDue()
            }
            let shown = try await app.call(.get, "/api/v1/webhooks/\(id)", token: admin)
            #expect(shown.json["status"] as? String == "disabled", "\(shown.text)")
            #expect(shown.json["disabled_reason"] as? String == "the endpoint failed without a success for 5 days")
            while try await app.runtime.hooks.dispatchPending() > 0 {}
            let inbox = try await app.call(.get, "/api/v1/notifications", token: admin)
            let notes = try #require(inbox.json["data"] as? [[String: Any]], "\(inbox.text)")
            #expect(notes.count == 1)
            #expect(notes.first?["level"] as? String == "error")
            #expect((notes.first?["body"] as? String)?.contains(id) == true, "\(notes)")

            // Disabled: new events are not fanned out to it. Enabled again: they are.
            let before = receiver.count
            _ = try await app.call(.patch, "/api/v1/installs/\(s.installID)/config", token: admin, json: ["token": "x"])
            try await deliveries.fanOut()
            try await deliveries.deliverDue()
            #expect(receiver.count == before)
            receiver.always.withLock { $0 = nil }
            let on = try await app.call(.patch, "/api/v1/webhooks/\(id)", token: admin, json: ["status": "active"])
            #expect(on.json["status"] as? String == "active" && on.json["disabled_reason"] == nil, "\(on.text)")
            _ = try await app.call(.patch, "/api/v1/installs/\(s.installID)/config", token: admin, json: ["token": "y"])
            try await deliveries.fanOut()
            try await deliveries.deliverDue()
            #expect(receiver.count == before + 1)
        }
    }
    /// The page: admin+ (a member gets 403, another org 404), CSRF before anything changes, field
    /// problems beside their field, the secret once, what an admin typed escaped.
    @Test(arguments: TestEngines.all)
    func theSettingsPageChecksRolesCSRFAndEscapes(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg(plan: "pro")
            let admin = try await app.signedIn(org: org, role: "admin", by: owner, email: "hooks-admin@example.com")
            let page = try await admin.get("/settings/webhooks")
            #expect(page.status == .ok && page.text.contains("Add endpoint") && page.text.contains("value=\"task.created\""), "\(page.text)")

            let url = "https://93.184.215.14/hook"
            let refused = try await admin.post("/settings/webhooks", ["url": url, "events": "*"], csrfFrom: "/settings/webhooks", csrf: false)
            #expect(refused.status == .forbidden)
            let bad = try await admin.post("/settings/webhooks", ["url": "ftp://example.com/x", "events": "*"], csrfFrom: "/settings/webhooks")
            #expect(bad.status == .unprocessableContent && bad.text.contains("id=\"webhook-url-error\""), "\(bad.text)")
            #expect((try await app.call(.get, "/api/v1/webhooks", token: owner).json["data"] as? [Any])?.isEmpty == true)

            let made = try await admin.post("/settings/webhooks", ["url": url, "events": "*", "description": "<script>alert(1)</script>"],
                                            csrfFrom: "/settings/webhooks")
            #expect(made.status == .ok && made.text.contains("whsec_"), "\(made.text)")
            let listed = try await app.call(.get, "/api/v1/webhooks", token: owner)
            let id = try #require((listed.json["data"] as? [[String: Any]])?.first?["id"] as? String, "\(listed.text)")
            let list = try await admin.get("/settings/webhooks")
            #expect(list.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !list.text.contains("<script>alert(1)"))
            #expect(!list.text.contains("whsec_"))
            let shown = try await admin.get("/settings/webhooks/\(id)")
            #expect(shown.status == .ok && shown.text.contains("Send test event") && !shown.text.contains("whsec_"))

            let member = try await app.signedIn(org: org, role: "member", by: owner, email: "hooks-member@example.com")
            #expect(try await member.get("/settings/webhooks").status == .forbidden)
            #expect(try await member.get("/settings/webhooks/\(id)").status == .forbidden)
            let (otherOrg, otherOwner) = try await app.makeOrg(plan: "pro", name: "Other")
            let other = try await app.signedIn(org: otherOrg, role: "admin", by: otherOwner, email: "other-admin@example.com")
            #expect(try await other.get("/settings/webhooks/\(id)").status == .notFound)
            #expect(try await other.post("/settings/webhooks/\(id)/delete", [:], csrfFrom: "/settings/webhooks").status == .notFound)
            #expect((try await app.call(.get, "/api/v1/webhooks", token: owner).json["data"] as? [Any])?.count == 1)
        }
    }
}
