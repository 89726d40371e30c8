import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MercatoCore
import MercatoCrypto
import MercatoStorage
import MercatoTestSupport
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// A webhook receiver on loopback that answers from a script and keeps what it received.
final class Receiver: Sendable {
    struct Received: Sendable {
        let id: String
        let timestamp: String
        let signature: String
        let body: [UInt8]
        /// The `Host` header.
        let host: String
    }
    let received = Mutex<[Received]>([])
    /// Answers to give, in order (status, Retry-After); 200 once it is empty.
    let script = Mutex<[(Int, String?)]>([])
    let always = Mutex<Int?>(nil)
    /// Waits this long before answering.
    let delay = Mutex<Duration?>(nil)

    var count: Int { received.withLock { $0.count } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("hook") { request, context -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            self.received.withLock {
                $0.append(Received(id: request.headers[HTTPField.Name("webhook-id")!] ?? "", timestamp: request.headers[HTTPField.Name("webhook-timestamp")!] ?? "",
                                   signature: request.headers[HTTPField.Name("webhook-signature")!] ?? "", body: Array(body.readableBytesView),
                                   host: request.head.authority ?? request.headers[HTTPField.Name("host")!] ?? ""))
            }
            if let delay = self.delay.withLock({ $0 }) { try await Task.sleep(for: delay) }
            let (status, retryAfter) = self.always.withLock { $0 }.map { ($0, nil) } ?? self.script.withLock { $0.isEmpty ? (200, nil) : $0.removeFirst() }
            var headers = HTTPFields()
            if let retryAfter { headers[.retryAfter] = retryAfter }
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{\"answer\":\(status)}")))
        }
        return router
    }

    /// Runs `body` with the receiver listening; answers its port.
    func serve(_ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await Application(router: router()).test(.live) { client in try await body(try #require(client.port)) }
    }
}

@Suite("Outbound webhook delivery: retries, Retry-After, rotation, circuit breaker, 410, delivery log")
struct DeliveryTests {
    struct Setup {
        let vendor: String
        let owner: String
        let installID: String
        let key: String
    }

    func setUp(_ app: AppHarness, port: Int, key: String = "hooked-app", host: String = "127.0.0.1") async throws -> Setup {
        let (_, vendor) = try await app.makeOrg(plan: "enterprise", name: "Vendor")
        var m = manifest(key)
        m["events"] = ["app.installed", "install.config_updated", "app.disabled", "app.enabled"]
        m["webhook_url"] = "http://\(host):\(port)/hook"
        m["config"] = [["key": "channel", "label": "Channel", "type": "string"]]
        _ = try await app.registerApp(m, token: vendor)
        _ = try await app.call(.post, "/api/v1/developer/apps/\(key)/publish", token: vendor)
        let (_, owner) = try await app.makeOrg(plan: "pro", name: "Customer")
        let installed = try await app.call(.post, "/api/v1/installs", token: owner, json: ["app": key])
        #expect(installed.status == .created, "\(installed.text)")
        return Setup(vendor: vendor, owner: owner, installID: installed.json["id"] as! String, key: key)
    }

    func service(_ app: AppHarness, clock: ManualClock, clients: DeliveryClients, policy: DeliveryPolicy = DeliveryPolicy(),
                 addressGuard: AddressGuard = AddressGuard(allowPrivate: true)) -> DeliveryService {
        DeliveryService(database: app.runtime.database, registry: app.runtime.registry, clients: clients, clock: clock.wallClock,
                        logger: TestDatabase.logger, policy: policy, addressGuard: addressGuard)
    }

    func secrets(_ app: AppHarness, _ key: String) async throws -> [String] {
        let appID = try await app.runtime.database.read { try await AppStore.find(key: key, on: $0)!.id }
        return try await app.runtime.registry.verificationSecrets(appID: appID, kind: .webhook)
    }

    @Test(arguments: TestEngines.all)
    func retriesHonourRetryAfterAndEveryAttemptIsLogged(engine: StorageEngine) async throws {
        try await withRig(engine) { app, clock, receiver, s, deliveries in
            receiver.script.withLock { $0 = [(500, nil), (429, "120")] }

            #expect(try await deliveries.fanOut() >= 1)
            #expect(try await deliveries.deliverDue() == 1)          // 500
            #expect(try await deliveries.deliverDue() == 0)          // not due before ~5 s
            clock.advance(by: 6.1)
            #expect(try await deliveries.deliverDue() == 1)          // 429, Retry-After 120
            clock.advance(by: 60)
            #expect(try await deliveries.deliverDue() == 0)          // Retry-After (120 s) replaces the schedule's step
            clock.advance(by: 61)
            #expect(try await deliveries.deliverDue() == 1)          // 200
            #expect(receiver.count == 3)

            // One webhook-id across the retries, each attempt signed and verifiable.
            let got = receiver.received.withLock { $0 }
            #expect(Set(got.map(\.id)).count == 1)
            let secrets = try await secrets(app, s.key)
            for r in got {
                let content = StandardWebhooks.signedContent(id: r.id, timestamp: r.timestamp, body: r.body)
                #expect(StandardWebhooks.verify(header: r.signature, content: content, secrets: secrets, publicKey: nil))
            }
            let event = try JSONSerialization.jsonObject(with: Data(got[0].body)) as! [String: Any]
            #expect(event["type"] as? String == "app.installed")
            #expect((event["data"] as? [String: Any])?["install_id"] as? String == s.installID)

            // The developer's log: three attempts with their codes and bodies.
            let id = got[0].id
            let one = try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries/\(id)", token: s.vendor)
            #expect(one.json["status"] as? String == "delivered", "\(one.text)")
            let attempts = try #require(one.json["attempt_log"] as? [[String: Any]])
            #expect(attempts.map { $0["status_code"] as? Int } == [500, 429, 200])
            #expect(attempts.last?["response_body"] as? String == "{\"answer\":200}")
            let list = try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries?status=delivered", token: s.vendor)
            #expect((list.json["data"] as? [[String: Any]])?.first?["id"] as? String == id)
            expectProblem(try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries", token: s.owner), .notFound, "not_found")
            expectProblem(try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries?status=odd", token: s.vendor), .unprocessableContent, "invalid_request")

            // Manual retry sends it again now, with the same webhook-id.
            let retried = try await app.call(.post, "/api/v1/developer/apps/\(s.key)/deliveries/\(id)/retry", token: s.vendor)
            #expect(retried.json["status"] as? String == "pending")
            #expect(try await deliveries.deliverDue() == 1)
            #expect(receiver.received.withLock { $0.last?.id } == id)

            // During a rotation both secrets sign: each one alone verifies.
            let old = secrets
            _ = try await app.call(.post, "/api/v1/developer/apps/\(s.key)/secrets/rotate", token: s.vendor, json: ["kind": "webhook"])
            let new = try await self.secrets(app, s.key).filter { !old.contains($0) }
            #expect(new.count == 1)
            _ = try await app.call(.patch, "/api/v1/installs/\(s.installID)/config", token: s.owner, json: ["channel": "#deals"])
            try await deliveries.fanOut()
            try await deliveries.deliverDue()
            let rotated = try #require(receiver.received.withLock { $0.last })
            let content = StandardWebhooks.signedContent(id: rotated.id, timestamp: rotated.timestamp, body: rotated.body)
            #expect(rotated.signature.split(separator: " ").count == 2)
            #expect(StandardWebhooks.verify(header: rotated.signature, content: content, secrets: old, publicKey: nil))
            #expect(StandardWebhooks.verify(header: rotated.signature, content: content, secrets: new, publicKey: nil))
        }
    }

    @Test(arguments: TestEngines.all)
    func circuitBreakerProbesAnd410DisablesTheEndpoint(engine: StorageEngine) async throws {
        var policy = DeliveryPolicy()
        policy.circuitThreshold = 2
        try await withRig(engine, policy: policy) { app, clock, receiver, s, deliveries in
            receiver.always.withLock { $0 = 503 }
            _ = try await app.call(.post, "/api/v1/installs/\(s.installID)/disable", token: s.owner)
            try await deliveries.fanOut()
            #expect(try await deliveries.deliverDue() == 2)           // two failures: the circuit opens
            #expect(receiver.count == 2)
            clock.advance(by: 7)
            try await deliveries.deliverDue()                        // due, but the circuit is open: nothing sent
            #expect(receiver.count == 2)
            clock.advance(by: 60)
            try await deliveries.deliverDue()                        // one probe only; it fails, the circuit reopens
            #expect(receiver.count == 3)
            receiver.always.withLock { $0 = nil }
            clock.advance(by: 400)
            try await deliveries.deliverDue()                        // the probe succeeds and closes the circuit;
            clock.advance(by: 2)                                     // the other waited a second for its outcome
            try await deliveries.deliverDue()
            #expect(receiver.count == 5)
            let delivered = try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries?status=delivered", token: s.vendor)
            #expect((delivered.json["data"] as? [Any])?.count == 2)   // app.installed and app.disabled

            // 410: the endpoint is disabled, later deliveries fail at once, the developer is told.
            receiver.script.withLock { $0 = [(410, nil)] }
            _ = try await app.call(.post, "/api/v1/installs/\(s.installID)/enable", token: s.owner)
            try await deliveries.fanOut()
            try await deliveries.deliverDue()
            _ = try await app.call(.patch, "/api/v1/installs/\(s.installID)/config", token: s.owner, json: ["channel": "#x"])
            try await deliveries.fanOut()
            let before = receiver.count
            try await deliveries.deliverDue()
            #expect(receiver.count == before)
            let failed = try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries?status=failed", token: s.vendor)
            let rows = try #require(failed.json["data"] as? [[String: Any]])
            #expect(rows.count == 2)
            let later = try #require(rows.first { $0["type"] as? String == "install.config_updated" })
            #expect((later["last_error"] as? String)?.hasPrefix("endpoint disabled") == true)
            #expect(rows.first { $0["type"] as? String == "app.enabled" }?["last_status_code"] as? Int == 410)
            while try await app.runtime.hooks.dispatchPending() > 0 {}
            let inbox = try await app.call(.get, "/api/v1/notifications", token: s.vendor)
            let note = try #require((inbox.json["data"] as? [[String: Any]])?.first)
            #expect(note["level"] as? String == "error")
            #expect((note["body"] as? String)?.contains("410") == true)

            // Recover re-queues the failed ones (bounded batch).
            let recovered = try await app.call(.post, "/api/v1/developer/apps/\(s.key)/recover", token: s.vendor,
                                               json: ["since": "2000-01-01T00:00:00Z"])
            #expect(recovered.json["recovered"] as? Int == 2, "\(recovered.text)")
            #expect(recovered.json["more"] as? Bool == false)
            expectProblem(try await app.call(.post, "/api/v1/developer/apps/\(s.key)/recover", token: s.vendor, json: ["since": "soon"]),
                          .unprocessableContent, "invalid_request")
        }
    }

    /// A receiver on loopback, the app on `engine` with a hand-moved clock, an app subscribed
    /// to lifecycle events and installed (its webhook URL on `host`), and a DeliveryService with
    /// `policy` and `addressGuard` (default: private addresses allowed); the delivery clients
    /// are shut down however `body` ends.
    func withRig(_ engine: StorageEngine, policy: DeliveryPolicy = DeliveryPolicy(), host: String = "127.0.0.1",
                 addressGuard: AddressGuard = AddressGuard(allowPrivate: true),
                 _ body: @escaping @Sendable (AppHarness, ManualClock, Receiver, Setup, DeliveryService) async throws -> Void) async throws {
        let clock = ManualClock(Date())
        let receiver = Receiver()
        try await receiver.serve { port in
            try await withApp(engine, clock: clock.wallClock) { app in
                let clients = DeliveryClients(grace: .seconds(1))
                do {
                    let s = try await setUp(app, port: port, host: host)
                    try await body(app, clock, receiver, s, service(app, clock: clock, clients: clients, policy: policy, addressGuard: addressGuard))
                } catch {
                    try? await clients.shutdown()
                    throw error
                }
                try await clients.shutdown()
            }
        }
    }

    @Test func aHangingEndpointTimesOutAndFiveDaysOfFailuresDisableIt() async throws {
        var policy = DeliveryPolicy()
        policy.timeout = .seconds(1)
        policy.circuitThreshold = 1000
        try await withRig(.sqlite, policy: policy) { app, clock, receiver, s, deliveries in
            receiver.delay.withLock { $0 = .seconds(3) }
            try await deliveries.fanOut()
            try await deliveries.deliverDue()
            let hung = try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries", token: s.vendor)
            let row = try #require((hung.json["data"] as? [[String: Any]])?.first)
            #expect(row["status"] as? String == "pending")
            #expect(row["last_error"] as? String == "no answer within 1 s")

            // No success for five days: the endpoint is disabled, the developer is told.
            receiver.delay.withLock { $0 = nil }
            receiver.always.withLock { $0 = 500 }
            for day in 0 ..< 6 {
                clock.advance(by: 86_400 + 1)
                _ = try await app.call(.patch, "/api/v1/installs/\(s.installID)/config", token: s.owner, json: ["channel": "#\(day)"])
                try await deliveries.fanOut()
                try await deliveries.deliverDue()
            }
            let endpoint = try await app.runtime.database.read { db in
                try await DeliveryStore.endpoint(appID: try await AppStore.find(key: s.key, on: db)!.id, on: db)
            }
            #expect(endpoint.disabledReason == "the endpoint failed without a success for 5 days")
            while try await app.runtime.hooks.dispatchPending() > 0 {}
            let inbox = try await app.call(.get, "/api/v1/notifications", token: s.vendor)
            #expect((inbox.json["data"] as? [[String: Any]])?.first?["level"] as? String == "error")
            // Disabled once: one activity, one notification, whatever was in flight.
            #expect((inbox.json["data"] as? [[String: Any]])?.count == 1)
        }
    }

    @Test func privateLoopbackLinkLocalAndMetadataAddressesAreRefused() async {
        let guardRail = AddressGuard(allowPrivate: false)
        for url in ["http://127.0.0.1:9/x", "https://localhost/x", "https://10.1.2.3/x", "https://172.20.0.1/x", "https://192.168.1.1/x",
                    "https://169.254.169.254/latest/meta-data", "https://[::1]/x", "https://[fe80::1]/x", "https://[fd00::1]/x",
                    "https://[::ffff:127.0.0.1]/x", "https://0.0.0.0/x", "https://100.64.0.1/x", "ftp://example.com/x"] {
            guard case .refused = await guardRail.verdict(for: url) else { Issue.record("not refused: \(url)"); continue }
        }
        #expect(await guardRail.verdict(for: "https://93.184.215.14/hook") == .deliver(host: "93.184.215.14", address: "93.184.215.14"))
        #expect(await guardRail.verdict(for: "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook")
                == .deliver(host: "2606:2800:21f:cb07:6820:80da:af6b:8b2c", address: "2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
        #expect(await AddressGuard(allowPrivate: true).verdict(for: "http://127.0.0.1:9/x") == .deliver(host: "127.0.0.1", address: "127.0.0.1"))

        // A name is judged by every address it has, and delivered to the first it answered.
        let mixed = AddressGuard(allowPrivate: false) { host in
            host == "mixed.example" ? [[93, 184, 215, 14], [10, 0, 0, 7]] : host == "public.example" ? [[93, 184, 215, 14], [93, 184, 215, 15]] : []
        }
        guard case .refused = await mixed.verdict(for: "https://mixed.example/hook") else { Issue.record("a name with a private address passed"); return }
        #expect(await mixed.verdict(for: "https://public.example/hook") == .deliver(host: "public.example", address: "93.184.215.14"))
        // Not resolving now is not a refusal: a later attempt may succeed.
        #expect(await mixed.verdict(for: "https://gone.example/hook") == .unresolved("the webhook host does not resolve"))
    }

    /// DNS rebinding: the check is answered a public address, a second lookup would give
    /// loopback (where the receiver listens). The delivery goes to the checked address, so the
    /// receiver never sees it.
    @Test func aDeliveryConnectsToTheAddressThatWasCheckedNotToASecondLookup() async throws {
        var policy = DeliveryPolicy()
        policy.timeout = .seconds(1)
        let rebinding = AddressGuard(allowPrivate: false) { host in host == "localhost" ? [[192, 0, 43, 9]] : AddressGuard.systemResolve(host) }
        try await withRig(.sqlite, policy: policy, host: "localhost", addressGuard: rebinding) { app, clock, receiver, s, deliveries in
            #expect(try await deliveries.fanOut() >= 1)
            #expect(try await deliveries.deliverDue() == 1)
            #expect(receiver.count == 0)
            let log = try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries", token: s.vendor)
            let row = try #require((log.json["data"] as? [[String: Any]])?.first)
            #expect(row["status"] as? String == "pending", "\(log.text)")
            #expect(row["last_error"] as? String != nil)
        }
        // The same rig with the check answered loopback (allowed here) does arrive: the test
        // above fails for the pin, not for the rig.
        let loopback = AddressGuard(allowPrivate: true) { host in host == "localhost" ? [[127, 0, 0, 1]] : AddressGuard.systemResolve(host) }
        try await withRig(.sqlite, host: "localhost", addressGuard: loopback) { _, _, receiver, _, deliveries async throws in
            #expect(try await deliveries.fanOut() >= 1)
            #expect(try await deliveries.deliverDue() == 1)
            #expect(receiver.count == 1)
            let host: String? = receiver.received.withLock { $0.first?.host }
            #expect(host?.hasPrefix("localhost:") == true, "\(String(describing: host))")
        }
    }

    /// A host with no address now: an ordinary failed attempt, retried later, not a final failure.
    @Test func aHostThatDoesNotResolveIsRetriedNotFailed() async throws {
        let unresolvable = AddressGuard(allowPrivate: true) { host in host == "localhost" ? [] : AddressGuard.systemResolve(host) }
        try await withRig(.sqlite, host: "localhost", addressGuard: unresolvable) { app, clock, receiver, s, deliveries in
            #expect(try await deliveries.fanOut() >= 1)
            #expect(try await deliveries.deliverDue() == 1)
            let log = try await app.call(.get, "/api/v1/developer/apps/\(s.key)/deliveries", token: s.vendor)
            let row = try #require((log.json["data"] as? [[String: Any]])?.first)
            #expect(row["status"] as? String == "pending", "\(log.text)")
            #expect(row["last_error"] as? String == "the webhook host does not resolve")
            #expect(receiver.count == 0)
        }
    }

    /// The pinned client connects to the given address for a name no resolver knows, and sends
    /// the name as the Host; clients beyond the limit are retired.
    @Test func pinnedClientsConnectToTheirAddressUnderTheirName() async throws {
        let receiver = Receiver()
        try await receiver.serve { port in
            let clients = DeliveryClients(grace: .milliseconds(10))
            do {
                var request = HTTPClientRequest(url: "http://hooks.rebind.invalid:\(port)/hook")
                request.method = .POST
                let client = clients.client(host: "hooks.rebind.invalid", address: "127.0.0.1")
                let response = try await client.execute(request, timeout: .seconds(5))
                #expect(response.status == .ok)
                #expect(receiver.received.withLock { $0.map(\.host) } == ["hooks.rebind.invalid:\(port)"])
                let again = clients.client(host: "hooks.rebind.invalid", address: "127.0.0.1")
                #expect(again === client)
                #expect(clients.client(host: "127.0.0.1", address: "127.0.0.1") !== client)
                for n in 0 ..< DeliveryClients.limit + 3 { _ = clients.client(host: "h\(n).invalid", address: "127.0.0.1") }
                #expect(clients.pinnedCount == DeliveryClients.limit)
                try await Task.sleep(for: .milliseconds(200))
            } catch {
                try? await clients.shutdown()
                throw error
            }
            try await clients.shutdown()
        }
    }
}
