public import Foundation
public import MercatoHooks
import Synchronization

/// Receives provider webhooks for installs (CONTRACT §11): `POST /api/v1/inbound/{install_id}/{provider}`.
///
/// The host finds the install and keeps the size and rate limits; this plugin checks the
/// provider's signature with the install's secret, stores the event durably, deduplicates on
/// the provider's event id and emits `inbound.received` through the outbox.
///
/// Each event is kept under ``key(provider:eventID:)`` (the provider's own id, so ids a provider
/// issues in time order are written next to each other) in the install's storage
/// as `{id}`, written with its `inbound.received`
/// event in one transaction (``PluginStorage/create(_:_:expiresAt:emitting:)``): an answered
/// event is in the outbox, a stored record always has its event, and of two requests carrying
/// the same event at once only one writes. The record is kept ``recordRetention`` (past every
/// provider's own retry schedule), then expires, so a busy install's records never fill its
/// storage quota.
public struct InboundPlugin: MercatoPlugin {
    /// The time now (tests move it).
    let now: @Sendable () -> Date
    /// Which installs were last seen without records of the versions before 1.3.0.
    let legacy = LegacyRecords()
    /// Each install's last event and last refusal per provider, for its admins.
    let status = InboundStatus()

    public init(now: @escaping @Sendable () -> Date = { Date() }) {
        self.now = now
    }

    public static let eventType = "inbound.received"

    /// How long an event's record (and so its dedupe) is kept: 4 days, longer than any of the
    /// schemes' providers retries one event (Stripe: up to 3 days; Shopify: 48 hours; Razorpay:
    /// 24 hours; Slack: about an hour). The same event id sent later is taken as a new event.
    public static let recordRetention: TimeInterval = 4 * 86_400

    /// What an install's records may take: 2 GiB, the records (about 120 bytes each with their
    /// key) of the host's default allowance of 50 events a second kept up for the whole
    /// retention (17 million). Past it, new events are refused (413) until old records expire,
    /// and the provider retries them.
    public static let storageBytes = 2 * 1024 * 1024 * 1024

    public static let manifest = PluginManifest(
        id: "inbound",
        version: "1.3.0",
        emits: [eventType],
        routes: [
            RouteDefinition(.get, "inbound/{install_id}", minimumRole: .member,
                            summary: "What an install's receiving URLs last got: per provider, the last event stored and the last request refused, with why."),
        ],
        publicRoutes: [
            PublicRouteDefinition(.post, "inbound/{install_id}/{provider}", installParameter: "install_id",
                                  summary: "A provider's webhook for an install (stripe, github, standard-webhooks, slack, shopify, razorpay, phonepe)."),
        ],
        installStorageBytes: storageBytes
    )

    public func handlePublicRoute(_ request: PublicRouteRequest, _ context: HookContext) async throws -> RouteResponse {
        let install = request.install.installID
        let provider = request.parameters["provider"] ?? ""
        guard InboundSchemes.known.contains(provider), let secret = try await context.api.inboundSecret(of: install, provider: provider) else {
            throw CommandError.notFound("This install receives no `\(provider.prefix(64))` webhooks.")
        }
        let verified: InboundVerifier.Verified
        do {
            verified = try InboundVerifier(provider: provider, secret: secret).verify(request, now: now())
        } catch let refusal as CommandError {
            // The admin's clue when the provider's dashboard shows failures: the answer it got.
            status.refused(refusal, provider: provider, install: install, at: request.receivedAt)
            throw refusal
        }
        // Slack's handshake when a Request URL is saved: echo the challenge; it is not an event,
        // but it shows the admin that Slack reached the URL with the right secret.
        if provider == "slack", let object = verified.payload.objectValue, object["type"]?.stringValue == "url_verification",
           let challenge = object["challenge"]?.stringValue {
            await status.seen(provider: provider, ["event_id": .null, "event_type": .string("url_verification")],
                              install: install, at: request.receivedAt, context)
            return .json(.object(["challenge": .string(challenge)]))
        }
        let key = Self.key(provider: provider, eventID: verified.eventID)
        let received = request.receivedAt
        // Versions before 1.3.0 kept records under the id's hash: while the install may still
        // hold one (up to the retention after an upgrade), the event is looked for there first.
        if try await legacy.mayHold(install, at: received, context.storage) {
            let old = Self.legacyKey(provider: provider, eventID: verified.eventID)
            if let stored = try await context.storage.get(old) {
                // A record of version 1.0.0, written before its event (`delivered` false: that
                // node stopped in between, so the provider never had a 200): written anew.
                guard stored.value.objectValue?["delivered"]?.boolValue == false else { return Self.answer(stored.value, duplicate: true) }
                _ = try await context.storage.delete(old)
            }
        }
        let id = PluginSupport.sortableID("inb", at: received)
        // Only what a duplicate's answer needs: the record is all the quota holds per event
        // (about 120 bytes with its key), and the event itself is in the outbox.
        let record: JSONValue = .object(["id": .string(id)])
        // The payload is the provider's JSON text as sent (its member order and numbers kept).
        let event = EventDraft(type: Self.eventType, data: [
            "id": .string(id),
            "provider": .string(provider),
            "install_id": .string(install),
            "event_id": .string(verified.eventID),
            "event_type": verified.eventType.map(JSONValue.string) ?? .null,
            "received_at": .string(PluginSupport.timestamp(received)),
            "payload": verified.payload,
        ], verbatim: verified.payloadText.map { ["payload": $0] } ?? [:])
        let expiry = received.addingTimeInterval(Self.recordRetention)
        // Written with its event in one transaction unless the key holds a record already (the
        // provider's retry, or the same event on another request a moment ago): one write for
        // a new event, one read more for a duplicate.
        if try await context.storage.create(key, record, expiresAt: expiry, emitting: [event]) {
            await status.seen(provider: provider, ["event_id": .string(String(verified.eventID.prefix(200))),
                                                   "event_type": verified.eventType.map { .string(String($0.prefix(200))) } ?? .null],
                              install: install, at: received, context)
            return Self.answer(record, duplicate: false)
        }
        guard let stored = try await context.storage.get(key) else {
            // Expired or deleted between the two calls: the event is new again.
            return try await handlePublicRoute(request, context)
        }
        return Self.answer(stored.value, duplicate: true)
    }

    /// `GET /api/v1/inbound/{install_id}`: the install's ``InboundStatus`` notes (404 for an
    /// install of another org, or none).
    public func handleRoute(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse {
        guard request.route == "inbound/{install_id}", let install = request.parameters["install_id"] else {
            throw CommandError.notFound("No route `\(request.route)`.")
        }
        return .json(try await status.read(install: install, context.storage.install(install), context.api))
    }

    /// Where an event's record is kept: `in:<provider>:=<event id>` when the id is at most 128
    /// printable ASCII characters (every scheme's ids are), else `in:<provider>:#<its SHA-256>`.
    /// Keeping the id itself keeps ids issued in time order (Svix's and Clerk's `msg_` ids begin
    /// with their time) next to each other in storage's index: a batch of new events then
    /// writes a few index pages, where hashed ids wrote one page each.
    static func key(provider: String, eventID: String) -> String {
        let bytes = eventID.utf8
        if bytes.count <= 128, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) { return "in:\(provider):=" + eventID }
        return "in:\(provider):#" + WebhookCrypto.hex(WebhookCrypto.sha256(Array(bytes)))
    }

    /// Where versions before 1.3.0 kept it.
    static func legacyKey(provider: String, eventID: String) -> String {
        "evt:\(provider):" + WebhookCrypto.hex(WebhookCrypto.sha256(Array(eventID.utf8)))
    }

    static func answer(_ record: JSONValue, duplicate: Bool) -> RouteResponse {
        .json(.object(["id": record.objectValue?["id"] ?? .null, "duplicate": .bool(duplicate)]))
    }

    /// The install is gone: so are its received events' records and what its URLs last got.
    public func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {
        status.forget(install: install.installID)
        try await context.storage.deleteAll()
    }
}

/// The installs this process last found without records of the versions before 1.3.0 (keys
/// `evt:`), and when. Such records are only ever read or expire now, so once an install has
/// none, looking for them again is needed only while a node of an older version may still be
/// writing them (a rolling upgrade): each install is looked at again after a minute.
final class LegacyRecords: Sendable {
    private let clearAt = Mutex<[String: Date]>([:])
    static let recheck: TimeInterval = 60

    func mayHold(_ install: String, at now: Date, _ storage: any PluginStorage) async throws -> Bool {
        if let at = clearAt.withLock({ $0[install] }), now.timeIntervalSince(at) < Self.recheck, now >= at { return false }
        let holds = try await !storage.keys(prefix: "evt:", after: nil, limit: 1).isEmpty
        if !holds { clearAt.withLock { $0[install] = now } }
        return holds
    }
}
