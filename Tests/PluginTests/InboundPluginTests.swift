import Foundation
import Synchronization
import InboundPlugin
import MercatoHooks
import MercatoHooksTesting
import Testing

/// The inbound plugin against the fake host, for every scheme of CONTRACT §11.
@Suite("Inbound plugin")
struct InboundPluginTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    let plugin = InboundPlugin(now: { InboundPluginTests.now })
    var timestamp: Int { Int(Self.now.timeIntervalSince1970) }

    func request(_ install: InstallInfo, _ provider: String, headers: [String: String], body: [UInt8]) -> PublicRouteRequest {
        PublicRouteRequest(method: .post, route: "inbound/{install_id}/{provider}",
                           parameters: ["install_id": install.installID, "provider": provider], headers: headers, body: body,
                           install: install, receivedAt: Self.now)
    }

    func setUp(_ provider: String) -> (FakeHost, InstallInfo, String) {
        let host = FakeHost()
        let install = host.install(app: "payments")
        let secret = InboundSigner.secret(for: provider)
        host.declareInbound(install, provider: provider, secret: secret)
        return (host, install, secret)
    }

    func send(_ host: FakeHost, _ install: InstallInfo, _ provider: String, headers: [String: String], body: [UInt8]) async throws -> [String: JSONValue] {
        guard case .json(let value, let status) = try await plugin.handlePublicRoute(request(install, provider, headers: headers, body: body), host.context(install)) else {
            Issue.record("not JSON")
            return [:]
        }
        #expect(status == 200)
        return value.objectValue ?? [:]
    }

    func refusal(_ host: FakeHost, _ install: InstallInfo, _ provider: String, headers: [String: String], body: [UInt8]) async -> CommandError? {
        do {
            _ = try await plugin.handlePublicRoute(request(install, provider, headers: headers, body: body), host.context(install))
            return nil
        } catch let error as CommandError {
            return error
        } catch {
            return nil
        }
    }

    @Test(arguments: InboundSchemes.known)
    func aSignedEventIsStoredDeliveredOnceAndDeduplicated(provider: String) async throws {
        let (host, install, secret) = setUp(provider)
        let body = InboundSigner.body(provider: provider, eventID: "evt_1")
        let headers = InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_1", timestamp: timestamp)
        let first = try await send(host, install, provider, headers: headers, body: body)
        let id = try #require(first["id"]?.stringValue)
        #expect(id.hasPrefix("inb_"))
        #expect(first["duplicate"] == .bool(false))
        // The event's record, and the note the install's page shows (`seen:`).
        #expect(Set(host.keys(in: install.installID)) == ["in:\(provider):=" + InboundSigner.expectedEventID(provider: provider, eventID: "evt_1"), "seen:\(provider)"])
        #expect(host.emitted.count == 1)
        let event = try #require(host.emitted.first)
        #expect(event.install == install.installID)
        #expect(event.event.type == "inbound.received")
        let data = try #require(event.event.data.objectValue)
        #expect(data["provider"] == .string(provider))
        #expect(data["install_id"] == .string(install.installID))
        #expect(data["event_id"] == .string(InboundSigner.expectedEventID(provider: provider, eventID: "evt_1")))
        #expect(data["received_at"]?.stringValue != nil)
        #expect(data["payload"]?.objectValue != nil)
        // The secret is nowhere in the event.
        let encoded = String(decoding: try JSONEncoder().encode(event.event.data), as: UTF8.self)
        #expect(!encoded.contains(secret))

        // The provider retries the same event: a duplicate, the same id, not delivered again.
        let again = try await send(host, install, provider, headers: headers, body: body)
        #expect(again["duplicate"] == .bool(true))
        #expect(again["id"] == .string(id))
        #expect(host.emitted.count == 1)

        // Another event is a new one.
        let body2 = InboundSigner.body(provider: provider, eventID: "evt_2")
        let second = try await send(host, install, provider, headers: InboundSigner.headers(provider: provider, secret: secret, body: body2, eventID: "evt_2", timestamp: timestamp), body: body2)
        #expect(second["duplicate"] == .bool(false))
        #expect(host.emitted.count == 2)
    }

    @Test(arguments: InboundSchemes.known)
    func badSignaturesAre401AndStoreNothing(provider: String) async throws {
        let (host, install, secret) = setUp(provider)
        let body = InboundSigner.body(provider: provider, eventID: "evt_1")
        let good = InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_1", timestamp: timestamp)
        var cases: [(String, [String: String], [UInt8])] = [
            ("wrong secret", InboundSigner.headers(provider: provider, secret: InboundSigner.secret(for: provider, seed: "b"), body: body, eventID: "evt_1", timestamp: timestamp), body),
            ("tampered body", good, InboundSigner.body(provider: provider, eventID: "evt_1", amount: 999_999)),
            ("missing header", good.filter { $0.key != InboundSigner.signatureHeader(provider) }, body),
            ("garbage signature", good.merging([InboundSigner.signatureHeader(provider): "zz"]) { $1 }, body),
        ]
        if InboundSigner.signsTimestamp(provider) {
            cases.append(("stale timestamp", InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_1", timestamp: timestamp - 301), body))
            cases.append(("future timestamp", InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_1", timestamp: timestamp + 301), body))
        }
        for (name, headers, body) in cases {
            let error = await refusal(host, install, provider, headers: headers, body: body)
            #expect(error?.status == 401, "\(name)")
            #expect(error?.code == "invalid_signature", "\(name)")
            #expect(error.map { !$0.message.contains(secret) } ?? true)
        }
        #expect(host.keys(in: install.installID).isEmpty)
        #expect(host.emitted.isEmpty)
        // Within the tolerance it passes (the stale case failed for its age only).
        if InboundSigner.signsTimestamp(provider) {
            let fresh = InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_1", timestamp: timestamp - 299)
            #expect(try await send(host, install, provider, headers: fresh, body: body)["duplicate"] == .bool(false))
        }
    }

    @Test func anUndeclaredOrUnknownProviderIs404() async throws {
        let (host, install, secret) = setUp("github")
        let body = InboundSigner.body(provider: "stripe", eventID: "evt_1")
        for provider in ["stripe", "paypal"] {
            let headers = InboundSigner.headers(provider: provider, secret: secret, body: body, eventID: "evt_1", timestamp: timestamp)
            let error = await refusal(host, install, provider, headers: headers, body: body)
            #expect(error?.status == 404)
        }
        #expect(host.emitted.isEmpty)
    }

    @Test func stripeAcceptsAnyOfSeveralV1SignaturesDuringItsOwnRotation() async throws {
        let (host, install, secret) = setUp("stripe")
        let body = InboundSigner.body(provider: "stripe", eventID: "evt_rot")
        let good = InboundSigner.headers(provider: "stripe", secret: secret, body: body, eventID: "evt_rot", timestamp: timestamp)["Stripe-Signature"]!
        let other = InboundSigner.headers(provider: "stripe", secret: "whsec_old", body: body, eventID: "evt_rot", timestamp: timestamp)["Stripe-Signature"]!
        let oldV1 = other.split(separator: ",")[1]
        let header = "t=\(timestamp),\(oldV1),\(good.split(separator: ",")[1]),v0=abcdef"
        #expect(try await send(host, install, "stripe", headers: ["Stripe-Signature": header], body: body)["duplicate"] == .bool(false))
    }

    @Test func standardWebhooksAcceptsSvixHeadersAndSeveralSignatures() async throws {
        let (host, install, secret) = setUp("standard-webhooks")
        let body = InboundSigner.body(provider: "standard-webhooks", eventID: "msg_1")
        let signed = InboundSigner.headers(provider: "standard-webhooks", secret: secret, body: body, eventID: "msg_1", timestamp: timestamp)
        let headers = ["svix-id": "msg_1", "svix-timestamp": signed["webhook-timestamp"]!,
                       "svix-signature": "v1,AAAA " + signed["webhook-signature"]!]
        let answer = try await send(host, install, "standard-webhooks", headers: headers, body: body)
        #expect(answer["duplicate"] == .bool(false))
        #expect(host.emitted.first?.event.data.objectValue?["event_type"] == .string("user.created"))
    }

    @Test func githubsDocumentedExampleVerifies() throws {
        // docs.github.com "Validating webhook deliveries": secret and payload with the expected signature.
        let verifier = InboundVerifier(provider: "github", secret: InboundSecret("It's a Secret to Everybody"))
        let install = FakeHost().install()
        let good = PublicRouteRequest(method: .post, route: "r", parameters: [:],
                                      headers: ["X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"],
                                      body: Array("Hello, World!".utf8), install: install)
        #expect(throws: Never.self) { try verifier.verify(good, now: Self.now) }
        var bad = good
        bad.body = Array("Hello, World?".utf8)
        #expect(throws: CommandError.self) { try verifier.verify(bad, now: Self.now) }
    }

    @Test func theSecretNeverPrints() {
        let secret = InboundSecret("whsec_do_not_print")
        #expect("\(secret)" == "********")
        #expect(String(reflecting: secret) == "********")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("do_not_print"))
    }

    @Test func anEventsRecordExpiresAfterTheRetentionSoItsStorageStaysBounded() async throws {
        // The host's clock moves; GitHub's scheme has no timestamp, so the same request can be sent days later.
        final class Clock: Sendable {
            let time = Mutex(InboundPluginTests.now)
            func advance(days: Double) { time.withLock { $0 += days * 86_400 } }
        }
        let clock = Clock()
        let host = FakeHost(now: { clock.time.withLock { $0 } })
        let install = host.install(app: "repo-events")
        let secret = InboundSigner.secret(for: "github")
        host.declareInbound(install, provider: "github", secret: secret)
        let body = InboundSigner.body(provider: "github", eventID: "d-1")
        let headers = InboundSigner.headers(provider: "github", secret: secret, body: body, eventID: "d-1", timestamp: timestamp)
        #expect(try await send(host, install, "github", headers: headers, body: body)["duplicate"] == .bool(false))
        clock.advance(days: 3.9)
        #expect(try await send(host, install, "github", headers: headers, body: body)["duplicate"] == .bool(true))
        #expect(host.emitted.count == 1)
        // Past the retention the record reads as gone: the same id is a new event again.
        clock.advance(days: 0.2)
        #expect(try await send(host, install, "github", headers: headers, body: body)["duplicate"] == .bool(false))
        #expect(host.emitted.count == 2)
        #expect(InboundPlugin.recordRetention == 4 * 86_400)
    }

    /// Versions before 1.3.0 kept a record under `evt:<provider>:<SHA-256 of the event id>`.
    static func legacyKey(_ provider: String, _ eventID: String) -> String {
        "evt:\(provider):" + WebhookCrypto.hex(WebhookCrypto.sha256(Array(eventID.utf8)))
    }

    @Test func anEventRecordedBeforeTheUpgradeIsStillADuplicate() async throws {
        let (host, install, secret) = setUp("github")
        let context = host.context(install)
        // Received by version 1.2.0 a day ago: the provider's retry arrives after the upgrade.
        _ = try await context.storage.set(Self.legacyKey("github", "d-1"), .object(["id": .string("inb_before")]),
                                          expiresAt: Self.now.addingTimeInterval(3 * 86_400))
        let body = InboundSigner.body(provider: "github", eventID: "d-1")
        let headers = InboundSigner.headers(provider: "github", secret: secret, body: body, eventID: "d-1", timestamp: timestamp)
        let answer = try await send(host, install, "github", headers: headers, body: body)
        #expect(answer == ["id": .string("inb_before"), "duplicate": .bool(true)])
        #expect(host.emitted.isEmpty)
        // Another event is new, and is kept under its own id.
        let other = InboundSigner.body(provider: "github", eventID: "d-2")
        let otherHeaders = InboundSigner.headers(provider: "github", secret: secret, body: other, eventID: "d-2", timestamp: timestamp)
        #expect(try await send(host, install, "github", headers: otherHeaders, body: other)["duplicate"] == .bool(false))
        #expect(host.emitted.count == 1)
        #expect(Set(host.keys(in: install.installID)) == [Self.legacyKey("github", "d-1"), "in:github:=d-2", "seen:github"])
    }

    @Test func aRecordThatVersion1LeftBeforeItsEventIsWrittenAgainWithItOnTheRetry() async throws {
        let (host, install, secret) = setUp("github")
        let context = host.context(install)
        // Version 1.0.0 wrote the record, then the event, then `delivered: true`; a node stopped
        // in between left `delivered: false` and never answered the provider.
        let old = Self.legacyKey("github", "d-1")
        _ = try await context.storage.set(old, .object(["id": .string("inb_lost"), "delivered": .bool(false)]))
        let body = InboundSigner.body(provider: "github", eventID: "d-1")
        let headers = InboundSigner.headers(provider: "github", secret: secret, body: body, eventID: "d-1", timestamp: timestamp)
        let again = try await send(host, install, "github", headers: headers, body: body)
        #expect(again["duplicate"] == .bool(false))
        #expect(host.emitted.count == 1)
        #expect(try await context.storage.get(old) == nil)
        #expect(try await send(host, install, "github", headers: headers, body: body)["duplicate"] == .bool(true))
        #expect(host.emitted.count == 1)
    }

    @Test func eventIDsAreKeptAsTheyAreOrHashedWhenLongOrUnprintable() async throws {
        let (host, install, secret) = setUp("standard-webhooks")
        let long = String(repeating: "m", count: 129)
        for id in ["msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", long, "ид-1", "a b"] {
            let body = InboundSigner.body(provider: "standard-webhooks", eventID: id)
            let headers = InboundSigner.headers(provider: "standard-webhooks", secret: secret, body: body, eventID: id, timestamp: timestamp)
            #expect(try await send(host, install, "standard-webhooks", headers: headers, body: body)["duplicate"] == .bool(false))
            #expect(try await send(host, install, "standard-webhooks", headers: headers, body: body)["duplicate"] == .bool(true))
        }
        let keys = host.keys(in: install.installID)
        #expect(keys.contains("in:standard-webhooks:=msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"))
        #expect(keys.filter { $0.hasPrefix("in:standard-webhooks:#") }.count == 3)
        #expect(keys.allSatisfy { $0.count <= 128 + 24 })
        #expect(host.emitted.count == 4)
    }

    @Test func slacksUrlVerificationIsAnsweredWithItsChallengeOnceSigned() async throws {
        let (host, install, secret) = setUp("slack")
        let body = Array(#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#.utf8)
        let headers = InboundSigner.headers(provider: "slack", secret: secret, body: body, eventID: "", timestamp: timestamp)
        let answer = try await send(host, install, "slack", headers: headers, body: body)
        #expect(answer == ["challenge": .string("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")])
        // No event: only the note that Slack reached the URL with the right secret.
        #expect(host.keys(in: install.installID) == ["seen:slack"])
        #expect(host.emitted.isEmpty)
        let forged = InboundSigner.headers(provider: "slack", secret: "other", body: body, eventID: "", timestamp: timestamp)
        #expect(await refusal(host, install, "slack", headers: forged, body: body)?.status == 401)
    }

    /// With several nodes, each keeps the refusals it answered in memory, and only the node that
    /// runs an uninstall's hook clears its own: another node's route must not show a refusal for
    /// an install that is gone.
    @Test func aRefusalHeldByAnotherNodeIsNotShownOnceTheInstallIsGone() async throws {
        let (host, install, secret) = setUp("stripe")
        let nodeA = InboundPlugin(now: { InboundPluginTests.now })
        let nodeB = InboundPlugin(now: { InboundPluginTests.now })
        let body = InboundSigner.body(provider: "stripe", eventID: "evt_1")
        let forged = InboundSigner.headers(provider: "stripe", secret: InboundSigner.secret(for: "stripe", seed: "b"), body: body, eventID: "evt_1",
                                           timestamp: timestamp)
        await #expect(throws: CommandError.self) {
            _ = try await nodeB.handlePublicRoute(request(install, "stripe", headers: forged, body: body), host.context(install))
        }
        let org = OrgInfo(id: install.orgID, name: install.orgName, plan: "enterprise")
        func shown(_ node: InboundPlugin) async throws -> [JSONValue] {
            let route = RouteRequest(method: .get, route: "inbound/{install_id}", parameters: ["install_id": install.installID],
                                     org: org, callerID: "usr_1", callerRole: .admin)
            guard case .json(let value, _) = try await node.handleRoute(route, host.orgContext(org, for: node)) else { return [] }
            return value.objectValue?["data"]?.arrayValue ?? []
        }
        let before = try await shown(nodeB)
        #expect(before.count == 1)
        #expect(before.first?.objectValue?["last_refused"]?.objectValue?["code"] == .string("invalid_signature"))
        #expect(!"\(before)".contains(secret))
        // Uninstalled through node A: the host forgets the install, node A's hook runs.
        host.uninstall(install)
        try await nodeA.installRemoved(install, host.context(install))
        #expect(try await shown(nodeB).isEmpty)
    }
}
