public import Foundation
import MercatoCrypto
import MercatoHooks
public import MercatoStorage
import SQLKit

/// An org's own webhook receivers (CONTRACT §10): the endpoints an org admin subscribes to the
/// org's events, their one-time secrets and rotation, a test event, and each endpoint's view of
/// the delivery log.
///
/// The endpoints are receivers of the one delivery path: ``DeliveryService`` fans outbox events
/// out to them beside the apps (every event about one of the org's installs whose type the
/// endpoint takes), signs with their secrets and keeps their breaker state in the same tables,
/// keyed by the `whe_` id where an app's state is keyed by its `app_` id.
///
/// Every call needs the admin role in the caller's org (the event types list: any member);
/// another org's endpoint is 404.
public struct OrgWebhookService: Sendable {
    let database: Database
    let secrets: SecretStore
    let capabilities: Capabilities
    let log: DeliveryLogService
    let addressGuard: AddressGuard
    let clock: WallClock
    /// How long a rotated-out secret keeps signing.
    public var secretOverlap: TimeInterval = 24 * 3600
    /// The type of the event `POST /webhooks/{id}/test` sends.
    public static let testEventType = "webhook.test"
    /// Endpoints one org may keep.
    public static let maxEndpoints = 50

    public init(database: Database, secrets: SecretStore, capabilities: Capabilities, log: DeliveryLogService, addressGuard: AddressGuard, clock: WallClock) {
        self.database = database
        self.secrets = secrets
        self.capabilities = capabilities
        self.log = log
        self.addressGuard = addressGuard
        self.clock = clock
    }

    /// An endpoint with its delivery state.
    public struct View: Sendable {
        public var endpoint: OrgWebhookRecord
        /// `active` or `disabled`.
        public var status: String
        public var disabledAt: Int64?
        public var disabledReason: String?
        public var events: [String] { endpoint.eventTypes }
    }

    /// `true` for the receiver id of an org endpoint (a delivery's receiver is an app or one of these).
    public static func isEndpointID(_ id: String) -> Bool { id.hasPrefix("whe_") }

    // MARK: Reads

    /// The types an endpoint may subscribe to: the host's lifecycle types and every plugin's.
    public func eventTypes(by caller: Principal) throws -> [String] {
        _ = try caller.org(atLeast: .member, to: "Listing event types")
        return capabilities.eventTypes.sorted()
    }

    public func list(by caller: Principal, cursor: String?, limit: Int) async throws -> (endpoints: [View], nextCursor: String?) {
        let org = try Self.adminOrg(caller)
        if let cursor, !RecordID.isValid(cursor, prefix: "whe") {
            throw APIError.invalidRequest("`cursor` is not a cursor this list handed out.", errors: [.init(field: "cursor", message: "is not valid")])
        }
        return try await database.read { db in
            let rows = try await OrgWebhookStore.page(orgID: org, before: cursor, limit: limit + 1, on: db)
            var views: [View] = []
            for row in rows.prefix(limit) { views.append(try await Self.view(row, on: db)) }
            return (views, rows.count > limit ? rows[limit - 1].id : nil)
        }
    }

    public func get(_ id: String, by caller: Principal) async throws -> View {
        let org = try Self.adminOrg(caller)
        return try await database.read { db in try await Self.view(try await Self.owned(id, org: org, on: db), on: db) }
    }

    // MARK: Changes

    /// Creates an endpoint; answers it with its secret (shown this once).
    public func create(url: String?, events: [String]?, description: String?, by caller: Principal, requestID: String? = nil) async throws -> (View, secret: String) {
        let org = try Self.adminOrg(caller)
        var problems: [APIError.FieldProblem] = []
        let url = await checkURL(url, required: true, &problems)
        let events = checkEvents(events, required: true, &problems)
        let description = checkDescription(description, &problems)
        guard problems.isEmpty, let url, let events else { throw APIError.fieldProblems(problems) }
        let now = clock.millis
        let record = OrgWebhookRecord(id: RecordID.make("whe", millis: now), orgId: org, url: url, events: try JSONCoding.text(events),
                                      description: description ?? "", createdBy: caller.actorID, createdAt: now, updatedAt: now)
        return try await database.transaction { db in
            let count = try await OrgWebhookStore.page(orgID: org, before: nil, limit: Self.maxEndpoints, on: db).count
            guard count < Self.maxEndpoints else {
                throw APIError(status: 409, code: "webhook_endpoint_limit", title: "Too many endpoints",
                               detail: "An org keeps at most \(Self.maxEndpoints) webhook endpoints; delete one first.")
            }
            try await OrgWebhookStore.insert(record, on: db)
            let secret = try await createSecret(for: record, at: now, on: db)
            try await ActivityLog.record(org: org, actor: caller.actorID, action: "webhook.endpoint_created", target: record.id, requestID: requestID,
                                         details: ["events": .array(events.map(JSONValue.string))], at: now, on: db)
            return (View(endpoint: record, status: "active"), secret)
        }
    }

    /// Changes what is given; `status` `disabled` stops deliveries, `active` starts them again
    /// (with the breaker reset, whether an admin or the delivery machinery disabled it).
    public func update(_ id: String, url: String?, events: [String]?, description: String?, status: String?, by caller: Principal,
                       requestID: String? = nil) async throws -> View {
        let org = try Self.adminOrg(caller)
        _ = try await get(id, by: caller)   // 404 before judging another org's body
        var problems: [APIError.FieldProblem] = []
        let newURL = await checkURL(url, required: false, &problems)
        let newEvents = checkEvents(events, required: false, &problems)
        let newDescription = checkDescription(description, &problems)
        if let status, !["active", "disabled"].contains(status) { problems.append(.init(field: "status", message: "must be active or disabled")) }
        guard problems.isEmpty else { throw APIError.fieldProblems(problems) }
        let now = clock.millis
        return try await database.transaction { db in
            var record = try await Self.owned(id, org: org, on: db)
            if let newURL, newURL != record.url {
                record.url = newURL
                try await OrgWebhookStore.retarget(id: id, url: newURL, on: db)
            }
            if let newEvents { record.events = try JSONCoding.text(newEvents) }
            if let newDescription { record.description = newDescription }
            record.updatedAt = now
            try await OrgWebhookStore.update(record, on: db)
            let state = try await DeliveryStore.endpoint(appID: id, on: db)
            switch (status, state.disabledAt) {
            case ("disabled", nil):
                var disabled = state
                disabled.disabledAt = now
                disabled.disabledReason = "disabled by an admin"
                try await DeliveryStore.save(disabled, on: db)
            case ("active", .some):
                try await DeliveryStore.save(EndpointRecord(appId: id, consecutiveFailures: 0, failingSince: nil, circuit: "closed", openUntil: nil,
                                                            disabledAt: nil, disabledReason: nil), on: db)
            default:
                break
            }
            var details: [String: JSONValue] = [:]
            if newURL != nil { details["url"] = "changed" }
            if let newEvents { details["events"] = .array(newEvents.map(JSONValue.string)) }
            if let status { details["status"] = .string(status) }
            try await ActivityLog.record(org: org, actor: caller.actorID, action: "webhook.endpoint_updated", target: id, requestID: requestID,
                                         details: details, at: now, on: db)
            return try await Self.view(record, on: db)
        }
    }

    /// Deletes the endpoint, its secrets and its delivery log.
    public func delete(_ id: String, by caller: Principal, requestID: String? = nil) async throws {
        let org = try Self.adminOrg(caller)
        let now = clock.millis
        try await database.transaction { db in
            guard try await OrgWebhookStore.delete(id: id, orgID: org, on: db) else { throw APIError.notFound("Webhook endpoint \(id)") }
            try await secrets.deleteAll(owner: id, on: db)
            try await ActivityLog.record(org: org, actor: caller.actorID, action: "webhook.endpoint_deleted", target: id, requestID: requestID, at: now, on: db)
        }
    }

    /// A new secret, shown once; the previous one keeps signing for ``secretOverlap`` (both sign
    /// meanwhile). Secrets already in an earlier overlap stop at once: at most two sign at a time.
    public func rotateSecret(_ id: String, by caller: Principal, requestID: String? = nil) async throws -> (secret: String, previousValidUntil: Date?) {
        let org = try Self.adminOrg(caller)
        let now = clock.millis
        let until = now + Int64(secretOverlap * 1000)
        return try await database.transaction { db in
            let record = try await Self.owned(id, org: org, on: db)
            var previousUntil: Date?
            for secret in try await OrgWebhookStore.validSecrets(endpointID: id, at: now, on: db) {
                if secret.validUntil == nil {
                    try await OrgWebhookStore.expireSecret(id: secret.id, at: until, on: db)
                    previousUntil = Timestamp.date(millis: until)
                } else {
                    try await OrgWebhookStore.expireSecret(id: secret.id, at: now, on: db)
                }
            }
            let text = try await createSecret(for: record, at: now, on: db)
            try await ActivityLog.record(org: org, actor: caller.actorID, action: "webhook.secret_rotated", target: id, requestID: requestID, at: now, on: db)
            return (text, previousUntil)
        }
    }

    /// Queues a `webhook.test` event for this endpoint only; answers its delivery (sent by the
    /// delivery service like any other, so it shows in the endpoint's log).
    public func sendTest(_ id: String, by caller: Principal) async throws -> DeliveryRecord {
        let org = try Self.adminOrg(caller)
        let now = clock.millis
        let delivery = try await database.transaction { db in
            let record = try await Self.owned(id, org: org, on: db)
            let data: JSONValue = [
                "endpoint_id": .string(id), "org_id": .string(org),
                "message": "A test event from Mercato: this endpoint receives and verifies the org's webhooks.",
            ]
            // No install and no app: the fan-out passes it by; this one delivery is its only one.
            let eventID = try await Outbox.write(Self.testEventType, data: data, org: org, install: nil, app: nil, at: now, on: db)
            try await DeliveryStore.insert(id: eventID, appID: id, orgID: org, installID: nil, type: Self.testEventType, url: record.url, at: now, on: db)
            guard let delivery = try await DeliveryStore.find(id: eventID, appID: id, on: db) else { throw APIError.internalError() }
            return delivery
        }
        Wakeup.senders.signal()
        return delivery
    }

    // MARK: The endpoint's delivery log

    public func deliveries(_ id: String, by caller: Principal, status: String?, type: String?, since: Date?, cursor: String?,
                           limit: Int) async throws -> (deliveries: [DeliveryRecord], nextCursor: String?) {
        _ = try await get(id, by: caller)
        return try await log.list(receiver: id, status: status, type: type, since: since, cursor: cursor, limit: limit)
    }

    public func delivery(_ id: String, messageID: String, by caller: Principal) async throws -> (DeliveryRecord, [AttemptRecord]) {
        _ = try await get(id, by: caller)
        return try await log.get(receiver: id, id: messageID)
    }

    /// Sets one delivery due now, with its `webhook-id` unchanged.
    public func retry(_ id: String, messageID: String, by caller: Principal) async throws -> DeliveryRecord {
        _ = try await get(id, by: caller)
        return try await log.retry(receiver: id, id: messageID)
    }

    // MARK: Signing

    /// The secret texts that sign deliveries to the endpoint now, newest first.
    static func verificationSecrets(endpointID: String, secrets: SecretStore, at now: Int64, on db: any SQLDatabase) async throws -> [String] {
        guard let endpoint = try await OrgWebhookStore.find(id: endpointID, on: db) else { return [] }
        var out: [String] = []
        for secret in try await OrgWebhookStore.validSecrets(endpointID: endpointID, at: now, on: db) {
            if let text = try await secrets.get(Self.sealContext(endpoint, secretID: secret.id), on: db) { out.append(text) }
        }
        return out
    }

    // MARK: Helpers

    static func sealContext(_ endpoint: OrgWebhookRecord, secretID: String) -> SealContext {
        SealContext(org: endpoint.orgId, owner: endpoint.id, purpose: "secret.\(secretID)")
    }

    private func createSecret(for endpoint: OrgWebhookRecord, at now: Int64, on db: any SQLDatabase) async throws -> String {
        let text = "whsec_" + Data(SecureRandom.bytes(32)).base64EncodedString()
        let record = OrgWebhookSecretRecord(id: RecordID.make("sec", millis: now), endpointId: endpoint.id, createdAt: now, validUntil: nil)
        try await OrgWebhookStore.insertSecret(record, on: db)
        try await secrets.put(text, for: Self.sealContext(endpoint, secretID: record.id), on: db)
        return text
    }

    static func adminOrg(_ caller: Principal) throws -> String {
        try caller.org(atLeast: .admin, to: "Managing webhook endpoints")
    }

    static func owned(_ id: String, org: String, on db: any SQLDatabase) async throws -> OrgWebhookRecord {
        guard isEndpointID(id), let record = try await OrgWebhookStore.find(id: id, orgID: org, on: db) else { throw APIError.notFound("Webhook endpoint \(id)") }
        return record
    }

    static func view(_ record: OrgWebhookRecord, on db: any SQLDatabase) async throws -> View {
        let state = try await DeliveryStore.endpoint(appID: record.id, on: db)
        return View(endpoint: record, status: state.disabledAt == nil ? "active" : "disabled", disabledAt: state.disabledAt,
                    disabledReason: state.disabledAt == nil ? nil : state.disabledReason)
    }

    /// The URL as an app's `webhook_url` is judged (https; http only on loopback), then by the
    /// delivery's own address guard, so an endpoint that could never be delivered is refused now.
    private func checkURL(_ url: String?, required: Bool, _ problems: inout [APIError.FieldProblem]) async -> String? {
        guard let url else {
            if required { problems.append(.init(field: "url", message: "is required")) }
            return nil
        }
        guard url.count <= 2048, ManifestValidator.isAcceptableWebhookURL(url) else {
            problems.append(.init(field: "url", message: "must be an https URL (http is accepted only for localhost, 127.0.0.1 or [::1])"))
            return nil
        }
        if case .refused(let why) = await addressGuard.verdict(for: url) {
            problems.append(.init(field: "url", message: "is refused: \(why)"))
            return nil
        }
        return url
    }

    private func checkEvents(_ events: [String]?, required: Bool, _ problems: inout [APIError.FieldProblem]) -> [String]? {
        guard let events else {
            if required { problems.append(.init(field: "events", message: "is required (a list of event types, or [\"*\"] for all)")) }
            return nil
        }
        guard !events.isEmpty, events.count <= 64 else {
            problems.append(.init(field: "events", message: "must list 1 to 64 event types"))
            return nil
        }
        var ok = true
        for (i, type) in events.enumerated() where type != "*" && !capabilities.eventTypes.contains(type) {
            problems.append(.init(field: "events[\(i)]", message: "`\(type)` is not an event type of this server (see GET /api/v1/webhooks/event_types)"))
            ok = false
        }
        guard ok else { return nil }
        var seen = Set<String>()
        return events.filter { seen.insert($0).inserted }
    }

    private func checkDescription(_ description: String?, _ problems: inout [APIError.FieldProblem]) -> String? {
        guard let description else { return nil }
        guard description.count <= 500 else {
            problems.append(.init(field: "description", message: "must be at most 500 characters"))
            return nil
        }
        return description
    }
}
