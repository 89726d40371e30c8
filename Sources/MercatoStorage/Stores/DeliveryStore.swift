import Foundation
public import SQLKit

/// One event on its way to one receiver (`id` is the event's `msg_...`, the stable
/// `webhook-id`). The receiver, `appId` (column `app_id`), is an app's `app_...` id (its
/// `webhook_url`) or an org webhook endpoint's `whe_...` id; the pair (id, receiver) is unique.
public struct DeliveryRecord: Sendable, Codable, Equatable {
    public var id: String
    public var appId: String
    public var orgId: String
    public var installId: String?
    public var type: String
    public var url: String
    /// `pending`, `delivered` or `failed`.
    public var status: String
    public var attempts: Int
    public var nextAttemptAt: Int64
    public var leaseUntil: Int64?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var createdAt: Int64
    public var deliveredAt: Int64?
}

/// One HTTP attempt of a delivery.
public struct AttemptRecord: Sendable, Codable, Equatable {
    public var deliveryId: String
    public var appId: String
    public var attempt: Int
    public var statusCode: Int?
    public var durationMs: Int64
    /// The first 4 KiB of the answer.
    public var responseBody: String?
    public var error: String?
    public var createdAt: Int64

    public init(deliveryId: String, appId: String, attempt: Int, statusCode: Int?, durationMs: Int64, responseBody: String?, error: String?, createdAt: Int64) {
        self.deliveryId = deliveryId
        self.appId = appId
        self.attempt = attempt
        self.statusCode = statusCode
        self.durationMs = durationMs
        self.responseBody = responseBody
        self.error = error
        self.createdAt = createdAt
    }
}

/// A receiver's endpoint (an app's `webhook_url` or an org endpoint, keyed by `appId` as in
/// ``DeliveryRecord``): the circuit breaker and whether it was disabled.
public struct EndpointRecord: Sendable, Codable, Equatable {
    public var appId: String
    public var consecutiveFailures: Int
    public var failingSince: Int64?
    /// `closed`, `open` or `half_open`.
    public var circuit: String
    public var openUntil: Int64?
    public var disabledAt: Int64?
    public var disabledReason: String?

    public init(appId: String, consecutiveFailures: Int, failingSince: Int64?, circuit: String, openUntil: Int64?, disabledAt: Int64?, disabledReason: String?) {
        self.appId = appId
        self.consecutiveFailures = consecutiveFailures
        self.failingSince = failingSince
        self.circuit = circuit
        self.openUntil = openUntil
        self.disabledAt = disabledAt
        self.disabledReason = disabledReason
    }
}

extension DeliveryRecord {
    /// Decodes a row of ``DeliveryStore/columns`` by column name (no `Codable` key conversion:
    /// the delivery loop reads these rows by the batch).
    init(row: any SQLRow) throws {
        self.init(id: try row.decode(column: "id", as: String.self), appId: try row.decode(column: "app_id", as: String.self),
                  orgId: try row.decode(column: "org_id", as: String.self), installId: try row.decode(column: "install_id", as: String?.self),
                  type: try row.decode(column: "type", as: String.self), url: try row.decode(column: "url", as: String.self),
                  status: try row.decode(column: "status", as: String.self), attempts: try row.decode(column: "attempts", as: Int.self),
                  nextAttemptAt: try row.decode(column: "next_attempt_at", as: Int64.self), leaseUntil: try row.decode(column: "lease_until", as: Int64?.self),
                  lastStatusCode: try row.decode(column: "last_status_code", as: Int?.self), lastError: try row.decode(column: "last_error", as: String?.self),
                  createdAt: try row.decode(column: "created_at", as: Int64.self), deliveredAt: try row.decode(column: "delivered_at", as: Int64?.self))
    }
}

/// What the fan-out needs of an outbox event: whom it is about and its type (not its payload,
/// which the senders read when they deliver it).
public struct OutboxEventHeader: Sendable, Equatable {
    public var id: String
    public var orgId: String
    public var installId: String?
    public var appId: String?
    public var type: String

    public init(id: String, orgId: String, installId: String?, appId: String?, type: String) {
        self.id = id
        self.orgId = orgId
        self.installId = installId
        self.appId = appId
        self.type = type
    }
}

/// Rows of `webhook_deliveries`, `webhook_attempts` and `webhook_endpoints`.
public enum DeliveryStore {
    static let columns: SQLQueryString = """
        id, app_id, org_id, install_id, type, url, status, attempts, next_attempt_at, lease_until, last_status_code, last_error, created_at, delivered_at
        """

    /// Outbox events not fanned out yet, oldest first, locked for this transaction (skipped by
    /// other nodes on PostgreSQL).
    public static func undispatched(limit: Int, on db: any SQLDatabase) async throws -> [OutboxEventHeader] {
        let lock = db.dialect.name == "postgresql" ? " FOR UPDATE SKIP LOCKED" : ""
        return try await db.raw("""
            SELECT id, org_id, install_id, app_id, type FROM outbox_events
            WHERE dispatched_at IS NULL ORDER BY id LIMIT \(bind: limit)\(unsafeRaw: lock)
            """).all().map { row in
                OutboxEventHeader(id: try row.decode(column: "id", as: String.self), orgId: try row.decode(column: "org_id", as: String.self),
                                  installId: try row.decode(column: "install_id", as: String?.self), appId: try row.decode(column: "app_id", as: String?.self),
                                  type: try row.decode(column: "type", as: String.self))
            }
    }

    public static func markDispatched(_ ids: [String], at millis: Int64, on db: any SQLDatabase) async throws {
        guard !ids.isEmpty else { return }
        try await db.raw("UPDATE outbox_events SET dispatched_at = \(bind: millis) WHERE id IN (\(binds: ids))").run()
    }

    public static func insert(id: String, appID: String, orgID: String, installID: String?, type: String, url: String, at millis: Int64,
                              on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO webhook_deliveries (id, app_id, org_id, install_id, type, url, status, attempts, next_attempt_at, created_at)
            VALUES (\(bind: id), \(bind: appID), \(bind: orgID), \(bind: installID), \(bind: type), \(bind: url), 'pending', 0, \(bind: millis), \(bind: millis))
            ON CONFLICT (id, app_id) DO NOTHING
            """).run()
    }

    /// Claims up to `limit` due pending deliveries until `leaseUntil`.
    public static func claimDue(limit: Int, now: Int64, leaseUntil: Int64, on db: any SQLDatabase) async throws -> [DeliveryRecord] {
        let lock = db.dialect.name == "postgresql" ? " FOR UPDATE SKIP LOCKED" : ""
        return try await db.raw("""
            UPDATE webhook_deliveries SET lease_until = \(bind: leaseUntil)
            WHERE (id, app_id) IN (
                SELECT id, app_id FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= \(bind: now) AND COALESCE(lease_until, 0) <= \(bind: now)
                ORDER BY next_attempt_at, id LIMIT \(bind: limit)\(unsafeRaw: lock)
            )
            RETURNING \(columns)
            """).all().map(DeliveryRecord.init(row:)).sorted { $0.id < $1.id }
    }

    /// Writes the delivery's new state (status, attempts, schedule, last outcome) and frees the lease.
    public static func update(_ d: DeliveryRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE webhook_deliveries SET status = \(bind: d.status), attempts = \(bind: d.attempts), next_attempt_at = \(bind: d.nextAttemptAt),
                lease_until = NULL, last_status_code = \(bind: d.lastStatusCode), last_error = \(bind: d.lastError), delivered_at = \(bind: d.deliveredAt)
            WHERE id = \(bind: d.id) AND app_id = \(bind: d.appId)
            """).run()
    }

    public static func insertAttempt(_ a: AttemptRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO webhook_attempts (delivery_id, app_id, attempt, status_code, duration_ms, response_body, error, created_at)
            VALUES (\(bind: a.deliveryId), \(bind: a.appId), \(bind: a.attempt), \(bind: a.statusCode), \(bind: a.durationMs), \(bind: a.responseBody), \(bind: a.error), \(bind: a.createdAt))
            """).run()
    }

    public static func find(id: String, appID: String, on db: any SQLDatabase) async throws -> DeliveryRecord? {
        try await db.raw("SELECT \(columns) FROM webhook_deliveries WHERE id = \(bind: id) AND app_id = \(bind: appID)")
            .first().map(DeliveryRecord.init(row:))
    }

    public static func attempts(id: String, appID: String, on db: any SQLDatabase) async throws -> [AttemptRecord] {
        try await db.raw("""
            SELECT delivery_id, app_id, attempt, status_code, duration_ms, response_body, error, created_at FROM webhook_attempts
            WHERE delivery_id = \(bind: id) AND app_id = \(bind: appID) ORDER BY attempt
            """).all(decoding: AttemptRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// An app's deliveries, newest first, before `cursor`, with optional filters.
    public static func page(appID: String, status: String?, type: String?, since: Int64?, before cursor: String?, limit: Int,
                            on db: any SQLDatabase) async throws -> [DeliveryRecord] {
        var query: SQLQueryString = "SELECT \(columns) FROM webhook_deliveries WHERE app_id = \(bind: appID)"
        if let status { query = query + " AND status = \(bind: status)" }
        if let type { query = query + " AND type = \(bind: type)" }
        if let since { query = query + " AND created_at >= \(bind: since)" }
        if let cursor { query = query + " AND id < \(bind: cursor)" }
        query = query + " ORDER BY id DESC LIMIT \(bind: limit)"
        return try await db.raw(query).all().map(DeliveryRecord.init(row:))
    }

    /// Sets one delivery due now, whatever its state; `false` when there is none.
    public static func retryNow(id: String, appID: String, now: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("""
            UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = \(bind: now), lease_until = NULL
            WHERE id = \(bind: id) AND app_id = \(bind: appID) RETURNING id
            """).all().isEmpty
    }

    /// Sets up to `limit` failed deliveries created since `since` due now; answers how many.
    public static func recover(appID: String, since: Int64, now: Int64, limit: Int, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("""
            UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = \(bind: now), lease_until = NULL
            WHERE (id, app_id) IN (
                SELECT id, app_id FROM webhook_deliveries WHERE app_id = \(bind: appID) AND status = 'failed' AND created_at >= \(bind: since)
                ORDER BY id LIMIT \(bind: limit)
            ) RETURNING id
            """).all().count
    }

    // MARK: Endpoints

    public static func endpoint(appID: String, on db: any SQLDatabase) async throws -> EndpointRecord {
        try await db.raw("""
            SELECT app_id, consecutive_failures, failing_since, circuit, open_until, disabled_at, disabled_reason FROM webhook_endpoints
            WHERE app_id = \(bind: appID)
            """).first(decoding: EndpointRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
            ?? EndpointRecord(appId: appID, consecutiveFailures: 0, failingSince: nil, circuit: "closed", openUntil: nil, disabledAt: nil, disabledReason: nil)
    }

    public static func save(_ e: EndpointRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO webhook_endpoints (app_id, consecutive_failures, failing_since, circuit, open_until, disabled_at, disabled_reason)
            VALUES (\(bind: e.appId), \(bind: e.consecutiveFailures), \(bind: e.failingSince), \(bind: e.circuit), \(bind: e.openUntil), \(bind: e.disabledAt), \(bind: e.disabledReason))
            ON CONFLICT (app_id) DO UPDATE SET consecutive_failures = excluded.consecutive_failures, failing_since = excluded.failing_since,
                circuit = excluded.circuit, open_until = excluded.open_until, disabled_at = excluded.disabled_at, disabled_reason = excluded.disabled_reason
            """).run()
    }

    /// Counts one more failure of the endpoint, atomically (attempts run side by side); answers the new state.
    public static func recordFailure(appID: String, at now: Int64, on db: any SQLDatabase) async throws -> EndpointRecord {
        try await db.raw("""
            INSERT INTO webhook_endpoints (app_id, consecutive_failures, failing_since, circuit) VALUES (\(bind: appID), 1, \(bind: now), 'closed')
            ON CONFLICT (app_id) DO UPDATE SET consecutive_failures = webhook_endpoints.consecutive_failures + 1,
                failing_since = COALESCE(webhook_endpoints.failing_since, excluded.failing_since)
            """).run()
        return try await endpoint(appID: appID, on: db)
    }

    /// Inserts attempts with multi-row statements (a delivery batch's outcomes).
    public static func insertAttempts(_ records: [AttemptRecord], on db: any SQLDatabase) async throws {
        try await MultiRowInsert.run(into: "webhook_attempts",
                                     columns: "delivery_id, app_id, attempt, status_code, duration_ms, response_body, error, created_at",
                                     rows: records.map { a in [a.deliveryId, a.appId, a.attempt, a.statusCode, a.durationMs, a.responseBody, a.error, a.createdAt] },
                                     on: db)
    }

    /// Marks claimed deliveries of `appID` delivered with `statusCode` (attempts + 1, lease freed).
    public static func markDelivered(ids: [String], appID: String, statusCode: Int, at millis: Int64, on db: any SQLDatabase) async throws {
        var start = 0
        while start < ids.count {
            let chunk = Array(ids[start ..< min(start + 256, ids.count)])
            try await db.raw("""
                UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, lease_until = NULL, last_status_code = \(bind: statusCode),
                    last_error = NULL, delivered_at = \(bind: millis)
                WHERE app_id = \(bind: appID) AND id IN (\(binds: chunk))
                """).run()
            start += chunk.count
        }
    }

    /// A success: the circuit closes and the failure count starts over (a disabled endpoint stays disabled).
    public static func recordSuccess(appID: String, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL, circuit = 'closed', open_until = NULL WHERE app_id = \(bind: appID)
            """).run()
    }

    public static func openCircuit(appID: String, until: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE webhook_endpoints SET circuit = 'open', open_until = \(bind: until) WHERE app_id = \(bind: appID)").run()
    }

    public static func disable(appID: String, reason: String, at now: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE webhook_endpoints SET disabled_at = \(bind: now), disabled_reason = \(bind: reason) WHERE app_id = \(bind: appID)
            """).run()
    }

    /// Takes the one probe of an open circuit whose wait is over; `false` when another caller has it.
    public static func takeProbe(appID: String, now: Int64, probeUntil: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("""
            UPDATE webhook_endpoints SET circuit = 'half_open', open_until = \(bind: probeUntil)
            WHERE app_id = \(bind: appID) AND circuit <> 'closed' AND COALESCE(open_until, 0) <= \(bind: now) RETURNING app_id
            """).all().isEmpty
    }

    // MARK: Retention

    /// Attempts, finished deliveries and fully handled outbox events older than `cutoff`.
    @discardableResult
    public static func prune(before cutoff: Int64, limit: Int, on db: any SQLDatabase) async throws -> Int {
        let attempts = try await db.raw("""
            DELETE FROM webhook_attempts WHERE (delivery_id, app_id, attempt) IN (
                SELECT delivery_id, app_id, attempt FROM webhook_attempts WHERE created_at < \(bind: cutoff) LIMIT \(bind: limit)) RETURNING attempt
            """).all().count
        let deliveries = try await db.raw("""
            DELETE FROM webhook_deliveries WHERE (id, app_id) IN (
                SELECT id, app_id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < \(bind: cutoff) LIMIT \(bind: limit)) RETURNING id
            """).all().count
        let events = try await db.raw("""
            DELETE FROM outbox_events WHERE id IN (
                SELECT id FROM outbox_events WHERE dispatched_at IS NOT NULL AND hooks_done_at IS NOT NULL AND created_at < \(bind: cutoff)
                AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = outbox_events.id AND d.status = 'pending')
                LIMIT \(bind: limit)) RETURNING id
            """).all().count
        return attempts + deliveries + events
    }

    /// The payloads of `eventIDs` (those still kept), by event id.
    public static func payloads(eventIDs: [String], on db: any SQLDatabase) async throws -> [String: String] {
        guard !eventIDs.isEmpty else { return [:] }
        var out: [String: String] = [:]
        for row in try await db.raw("SELECT id, payload FROM outbox_events WHERE id IN (\(binds: eventIDs))").all() {
            out[try row.decode(column: "id", as: String.self)] = try row.decode(column: "payload", as: String.self)
        }
        return out
    }

    /// The event's payload, as it is delivered.
    public static func payload(eventID: String, on db: any SQLDatabase) async throws -> String? {
        try await db.raw("SELECT payload FROM outbox_events WHERE id = \(bind: eventID)").first()?.decode(column: "payload", as: String.self)
    }
}
