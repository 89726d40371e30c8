public import Foundation
public import MercatoHooks

/// Receives provider webhooks for installs (CONTRACT §11): `POST /api/v1/inbound/{install_id}/{provider}`.
///
/// The host finds the install and keeps the size and rate limits; this plugin checks the
/// provider's signature with the install's secret, stores the event durably, deduplicates on
/// the provider's event id and emits `inbound.received` through the outbox.
///
/// Each event is kept under `evt:<provider>:<sha256 of the event id>` in the install's storage
/// as `{id, provider, event_id, event_type, received_at, delivered}` for ``recordRetention``
/// (past every provider's own retry schedule), then expires, so the records of a busy install
/// never fill its storage quota. `delivered` turns true once the outbox holds the event; a
/// provider's retry of an event stored but not yet in the outbox (the node stopped between the
/// two) puts it there, so nothing verified is lost.
public struct InboundPlugin: MercatoPlugin {
    /// The time now (tests move it).
    let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date = { Date() }) {
        self.now = now
    }

    public static let eventType = "inbound.received"

    /// How long an event's record (and so its dedupe) is kept: 7 days, longer than any of the
    /// schemes' providers retries one event (Stripe: 3 days; Shopify: 48 hours; Razorpay: 24
    /// hours; Slack: about an hour). The same event id sent later is taken as a new event.
    public static let recordRetention: TimeInterval = 7 * 86_400

    public static let manifest = PluginManifest(
        id: "inbound",
        version: "1.0.0",
        emits: [eventType],
        publicRoutes: [
            PublicRouteDefinition(.post, "inbound/{install_id}/{provider}", installParameter: "install_id",
                                  summary: "A provider's webhook for an install (stripe, github, standard-webhooks, slack, shopify, razorpay, phonepe)."),
        ]
    )

    public func handlePublicRoute(_ request: PublicRouteRequest, _ context: HookContext) async throws -> RouteResponse {
        let install = request.install.installID
        let provider = request.parameters["provider"] ?? ""
        guard InboundSchemes.known.contains(provider), let secret = try await context.api.inboundSecret(of: install, provider: provider) else {
            throw CommandError.notFound("This install receives no `\(provider.prefix(64))` webhooks.")
        }
        let verified = try InboundVerifier(provider: provider, secret: secret).verify(request, now: now())
        // Slack's handshake when a Request URL is saved: echo the challenge; it is not an event.
        if provider == "slack", let object = verified.payload.objectValue, object["type"]?.stringValue == "url_verification",
           let challenge = object["challenge"]?.stringValue {
            return .json(.object(["challenge": .string(challenge)]))
        }
        let key = "evt:\(provider):" + WebhookCrypto.hex(WebhookCrypto.sha256(Array(verified.eventID.utf8)))

        if let stored = try await context.storage.get(key) {
            // The same provider event again: answered as a duplicate, delivered only if it never reached the outbox.
            if stored.value.objectValue?["delivered"]?.boolValue != true {
                try await deliver(stored.value, verified, to: install, key: key, context)
            }
            return Self.answer(stored.value, duplicate: true)
        }
        let received = request.receivedAt
        let record: JSONValue = .object([
            "id": .string(PluginSupport.sortableID("inb", at: received)),
            "provider": .string(provider),
            "event_id": .string(verified.eventID),
            "event_type": verified.eventType.map(JSONValue.string) ?? .null,
            "received_at": .string(PluginSupport.timestamp(received)),
            "delivered": .bool(false),
        ])
        let version = try await context.storage.set(key, record, expiresAt: received.addingTimeInterval(Self.recordRetention))
        if version > 1 {
            // Another request stored the same event a moment ago and delivers it.
            return Self.answer(record, duplicate: true)
        }
        try await deliver(record, verified, to: install, key: key, context)
        return Self.answer(record, duplicate: false)
    }

    /// Writes `inbound.received` into the outbox, then marks the record delivered.
    func deliver(_ record: JSONValue, _ verified: InboundVerifier.Verified, to install: String, key: String, _ context: HookContext) async throws {
        let fields = record.objectValue ?? [:]
        let received = fields["received_at"]?.stringValue.flatMap(PluginSupport.date) ?? now()
        let data: JSONValue = .object([
            "id": fields["id"] ?? .null,
            "provider": fields["provider"] ?? .null,
            "install_id": .string(install),
            "event_id": .string(verified.eventID),
            "event_type": verified.eventType.map(JSONValue.string) ?? .null,
            "received_at": fields["received_at"] ?? .null,
            "payload": verified.payload,
        ])
        try await context.api.emit(EventDraft(type: Self.eventType, data: data), for: install)
        var done = fields
        done["delivered"] = .bool(true)
        _ = try await context.storage.set(key, .object(done), expiresAt: received.addingTimeInterval(Self.recordRetention))
    }

    static func answer(_ record: JSONValue, duplicate: Bool) -> RouteResponse {
        .json(.object(["id": record.objectValue?["id"] ?? .null, "duplicate": .bool(duplicate)]))
    }

    /// The install is gone: so are its received events' records.
    public func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {
        try await context.storage.deleteAll()
    }
}
