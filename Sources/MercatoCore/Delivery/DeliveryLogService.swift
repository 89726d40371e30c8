public import Foundation
public import MercatoStorage

/// The developer's view of their app's outbound deliveries (CONTRACT §2): the log with its
/// attempts, a retry of one delivery now, and recovery of every failed one since a time. The
/// same log, by receiver, serves an org's own endpoints (``OrgWebhookService``).
public struct DeliveryLogService: Sendable {
    let database: Database
    let registry: RegistryService
    let clock: WallClock
    /// The most deliveries one recover call sets due; call again for the rest.
    public static let recoverBatch = 1000

    public init(database: Database, registry: RegistryService, clock: WallClock) {
        self.database = database
        self.registry = registry
        self.clock = clock
    }

    public func list(appKey: String, by caller: Principal, status: String?, type: String?, since: Date?, cursor: String?,
                     limit: Int) async throws -> (deliveries: [DeliveryRecord], nextCursor: String?) {
        let app = try await registry.developerApp(key: appKey, by: caller).app
        return try await list(receiver: app.id, status: status, type: type, since: since, cursor: cursor, limit: limit)
    }

    public func get(appKey: String, id: String, by caller: Principal) async throws -> (DeliveryRecord, [AttemptRecord]) {
        let app = try await registry.developerApp(key: appKey, by: caller).app
        return try await get(receiver: app.id, id: id)
    }

    /// Sets the delivery due now (delivered ones are sent again: receivers dedupe on `webhook-id`).
    public func retry(appKey: String, id: String, by caller: Principal) async throws -> DeliveryRecord {
        let app = try await registry.developerApp(key: appKey, by: caller).app
        return try await retry(receiver: app.id, id: id)
    }

    // MARK: By receiver (an app's id or an org endpoint's), once the caller may see it

    func list(receiver: String, status: String?, type: String?, since: Date?, cursor: String?,
              limit: Int) async throws -> (deliveries: [DeliveryRecord], nextCursor: String?) {
        if let status, !["pending", "delivered", "failed"].contains(status) {
            throw APIError.invalidRequest("`status` must be pending, delivered or failed.", errors: [.init(field: "status", message: "is not a delivery status")])
        }
        if let cursor, !RecordID.isValid(cursor, prefix: "msg") {
            throw APIError.invalidRequest("`cursor` is not a cursor this list handed out.", errors: [.init(field: "cursor", message: "is not valid")])
        }
        let rows = try await database.read { db in
            try await DeliveryStore.page(appID: receiver, status: status, type: type, since: since.map { Int64($0.timeIntervalSince1970 * 1000) },
                                         before: cursor, limit: limit + 1, on: db)
        }
        return (Array(rows.prefix(limit)), rows.count > limit ? rows[limit - 1].id : nil)
    }

    func get(receiver: String, id: String) async throws -> (DeliveryRecord, [AttemptRecord]) {
        try await database.read { db in
            guard let delivery = try await DeliveryStore.find(id: id, appID: receiver, on: db) else { throw APIError.notFound("Delivery \(id)") }
            return (delivery, try await DeliveryStore.attempts(id: id, appID: receiver, on: db))
        }
    }

    func retry(receiver: String, id: String) async throws -> DeliveryRecord {
        let now = clock.millis
        let delivery = try await database.transaction { db in
            guard try await DeliveryStore.retryNow(id: id, appID: receiver, now: now, on: db),
                  let delivery = try await DeliveryStore.find(id: id, appID: receiver, on: db) else { throw APIError.notFound("Delivery \(id)") }
            return delivery
        }
        Wakeup.senders.signal()
        return delivery
    }

    /// Sets failed deliveries created since `since` due now, at most ``recoverBatch``.
    public func recover(appKey: String, since: Date, by caller: Principal) async throws -> (recovered: Int, more: Bool) {
        let app = try await registry.developerApp(key: appKey, by: caller).app
        let now = clock.millis
        let n = try await database.transaction { db in
            try await DeliveryStore.recover(appID: app.id, since: Int64(since.timeIntervalSince1970 * 1000), now: now, limit: Self.recoverBatch, on: db)
        }
        if n > 0 { Wakeup.senders.signal() }
        return (n, n == Self.recoverBatch)
    }
}
