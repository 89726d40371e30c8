import Foundation
public import SQLKit

/// One of an org's own webhook receivers (CONTRACT §10, `whe_...`).
public struct OrgWebhookRecord: Sendable, Codable, Equatable {
    public var id: String
    public var orgId: String
    public var url: String
    /// The subscribed event types as a JSON array of strings (`*` for all).
    public var events: String
    public var description: String
    public var createdBy: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, orgId: String, url: String, events: String, description: String, createdBy: String, createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.orgId = orgId
        self.url = url
        self.events = events
        self.description = description
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The subscribed types, decoded.
    public var eventTypes: [String] {
        (try? JSONDecoder().decode([String].self, from: Data(events.utf8))) ?? []
    }

    /// `true` when the endpoint takes events of `type`.
    public func subscribes(to type: String) -> Bool {
        let types = eventTypes
        return types.contains("*") || types.contains(type)
    }
}

/// One secret of an org endpoint: which one, and until when it verifies (nil: until rotated).
public struct OrgWebhookSecretRecord: Sendable, Codable, Equatable {
    public var id: String
    public var endpointId: String
    public var createdAt: Int64
    public var validUntil: Int64?

    public init(id: String, endpointId: String, createdAt: Int64, validUntil: Int64?) {
        self.id = id
        self.endpointId = endpointId
        self.createdAt = createdAt
        self.validUntil = validUntil
    }
}

/// Rows of `org_webhook_endpoints` and `org_webhook_secrets`. Deliveries to these endpoints are
/// rows of ``DeliveryStore`` whose receiver (`app_id` column) is the endpoint's `whe_` id.
public enum OrgWebhookStore {
    static let columns: SQLQueryString = "id, org_id, url, events, description, created_by, created_at, updated_at"

    public static func insert(_ e: OrgWebhookRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO org_webhook_endpoints (\(columns))
            VALUES (\(bind: e.id), \(bind: e.orgId), \(bind: e.url), \(bind: e.events), \(bind: e.description), \(bind: e.createdBy), \(bind: e.createdAt), \(bind: e.updatedAt))
            """).run()
    }

    public static func update(_ e: OrgWebhookRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE org_webhook_endpoints SET url = \(bind: e.url), events = \(bind: e.events), description = \(bind: e.description), updated_at = \(bind: e.updatedAt)
            WHERE id = \(bind: e.id) AND org_id = \(bind: e.orgId)
            """).run()
    }

    /// The endpoint when it belongs to `orgID`.
    public static func find(id: String, orgID: String, on db: any SQLDatabase) async throws -> OrgWebhookRecord? {
        try await db.raw("SELECT \(columns) FROM org_webhook_endpoints WHERE id = \(bind: id) AND org_id = \(bind: orgID)")
            .first(decoding: OrgWebhookRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func find(id: String, on db: any SQLDatabase) async throws -> OrgWebhookRecord? {
        try await db.raw("SELECT \(columns) FROM org_webhook_endpoints WHERE id = \(bind: id)")
            .first(decoding: OrgWebhookRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// The org's endpoints, newest first, before `cursor`.
    public static func page(orgID: String, before cursor: String?, limit: Int, on db: any SQLDatabase) async throws -> [OrgWebhookRecord] {
        var query: SQLQueryString = "SELECT \(columns) FROM org_webhook_endpoints WHERE org_id = \(bind: orgID)"
        if let cursor { query = query + " AND id < \(bind: cursor)" }
        query = query + " ORDER BY id DESC LIMIT \(bind: limit)"
        return try await db.raw(query).all(decoding: OrgWebhookRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// The org's endpoints that still take deliveries (not disabled), for the fan-out.
    public static func receivers(orgID: String, on db: any SQLDatabase) async throws -> [OrgWebhookRecord] {
        try await db.bound("""
            SELECT o.id, o.org_id, o.url, o.events, o.description, o.created_by, o.created_at, o.updated_at FROM org_webhook_endpoints o
            LEFT JOIN webhook_endpoints w ON w.app_id = o.id
            WHERE o.org_id = ? AND w.disabled_at IS NULL ORDER BY o.id
            """, [orgID]).all(decoding: OrgWebhookRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Removes the endpoint with its secrets' rows, its deliveries, attempts and breaker state.
    public static func delete(id: String, orgID: String, on db: any SQLDatabase) async throws -> Bool {
        let gone = try await !db.raw("DELETE FROM org_webhook_endpoints WHERE id = \(bind: id) AND org_id = \(bind: orgID) RETURNING id").all().isEmpty
        guard gone else { return false }
        try await db.raw("DELETE FROM org_webhook_secrets WHERE endpoint_id = \(bind: id)").run()
        try await db.raw("DELETE FROM webhook_attempts WHERE app_id = \(bind: id)").run()
        try await db.raw("DELETE FROM webhook_deliveries WHERE app_id = \(bind: id)").run()
        try await db.raw("DELETE FROM webhook_endpoints WHERE app_id = \(bind: id)").run()
        return true
    }

    /// Points the endpoint's pending deliveries at its new URL.
    public static func retarget(id: String, url: String, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE webhook_deliveries SET url = \(bind: url) WHERE app_id = \(bind: id) AND status = 'pending'").run()
    }

    // MARK: Secrets

    public static func insertSecret(_ s: OrgWebhookSecretRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO org_webhook_secrets (id, endpoint_id, created_at, valid_until)
            VALUES (\(bind: s.id), \(bind: s.endpointId), \(bind: s.createdAt), \(bind: s.validUntil))
            """).run()
    }

    /// Secrets still valid at `millis`: the current one first, then the overlapping ones.
    public static func validSecrets(endpointID: String, at millis: Int64, on db: any SQLDatabase) async throws -> [OrgWebhookSecretRecord] {
        try await db.raw("""
            SELECT id, endpoint_id, created_at, valid_until FROM org_webhook_secrets
            WHERE endpoint_id = \(bind: endpointID) AND (valid_until IS NULL OR valid_until > \(bind: millis))
            ORDER BY (CASE WHEN valid_until IS NULL THEN 0 ELSE 1 END), valid_until DESC, created_at DESC
            """).all(decoding: OrgWebhookSecretRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func expireSecret(id: String, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE org_webhook_secrets SET valid_until = \(bind: millis) WHERE id = \(bind: id)").run()
    }
}
