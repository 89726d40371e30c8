import Foundation
public import Logging
public import MercatoStorage
public import ServiceLifecycle

/// Removes what is past its keeping time: idempotency records (kept at least 24 h by contract,
/// 48 h by default) and command log rows (30 days by default), in bounded batches.
public struct RetentionService: Service {
    let database: Database
    let clock: WallClock
    let logger: Logger
    let idempotency: Duration
    let commandLog: Duration
    let deliveryLog: Duration
    let interval: Duration

    public init(database: Database, clock: WallClock, logger: Logger, idempotencyHours: Int, commandLogDays: Int, deliveryLogDays: Int = 30,
                interval: Duration = .seconds(600)) {
        self.database = database
        self.clock = clock
        self.logger = logger
        self.idempotency = .seconds(max(24, idempotencyHours) * 3600)
        self.commandLog = .seconds(commandLogDays * 86400)
        self.deliveryLog = .seconds(deliveryLogDays * 86400)
        self.interval = interval
    }

    public func run() async throws {
        await PeriodicWorker("retention sweep", every: interval, logger: logger).run {
            try await sweep()
            return 0
        }
    }

    /// One pass; answers (idempotency records, log rows) removed.
    @discardableResult
    public func sweep() async throws -> (idempotency: Int, log: Int) {
        let now = clock.millis
        let idempotencyCutoff = now - idempotency.components.seconds * 1000
        let logCutoff = now - commandLog.components.seconds * 1000
        let removedKeys = try await database.longTransaction { try await CommandStore.expireIdempotency(before: idempotencyCutoff, on: $0) }
        // Shared rate state that owes nothing changes no decision (several nodes on PostgreSQL).
        _ = try await database.longTransaction { try await CommandStore.expireRateState(before: Double(now) / 1000, on: $0) }
        var removedRows = 0
        while true {
            let n = try await database.longTransaction { try await CommandStore.expireLog(before: logCutoff, limit: 5000, on: $0) }
            removedRows += n
            if n < 5000 { break }
        }
        // Activity rows feed the plugins' hooks (the Audit plugin keeps the trail); a week after
        // their hooks ran they are no longer needed.
        let activityRows = try await database.longTransaction { try await AuditStore.pruneDispatched(before: now - 7 * 86_400_000, on: $0) }
        let deliveryCutoff = now - deliveryLog.components.seconds * 1000
        var deliveryRows = 0
        while true {
            let n = try await database.longTransaction { try await DeliveryStore.prune(before: deliveryCutoff, limit: 5000, on: $0) }
            deliveryRows += n
            if n == 0 { break }
        }
        // Plugin keys written with an expiry (e.g. the Inbound plugin's per-event records).
        var expiredKeys = 0
        while true {
            let n = try await database.longTransaction { try await PluginDataStore.expire(before: now, limit: 5000, on: $0) }
            expiredKeys += n
            if n < 5000 { break }
        }
        // Idempotency keys of the management API hold 24 hours (CONTRACT §9).
        _ = try await database.longTransaction { try await APIIdempotencyStore.expire(before: now - APIIdempotency.keepMillis, on: $0) }
        // API tokens: hourly counters of past hours; usage rows past the delivery log's keeping time (30 days by default).
        _ = try await database.longTransaction { try await TokenUsageStore.expireCounts(before: now / 3_600_000 - 1, on: $0) }
        var usageRows = 0
        while true {
            let n = try await database.longTransaction { try await TokenUsageStore.prune(before: deliveryCutoff, limit: 5000, on: $0) }
            usageRows += n
            if n < 5000 { break }
        }
        // Browser sessions past their sliding expiry or their end.
        let sessions = try await database.longTransaction { try await PeopleStore.deleteExpiredSessions(before: now, on: $0) }
        // Failed sign-ins older than the throttle's window count for nothing.
        _ = try await database.longTransaction { try await PeopleStore.expireSignInFailures(before: now - SignInThrottle.window, on: $0) }
        // Single-use ids of embedded sign-in tokens that have expired (a replay fails on `exp` anyway).
        _ = try await database.longTransaction { try await PeopleStore.deleteExpiredSSOTokens(before: now, on: $0) }
        if removedKeys + removedRows + activityRows + deliveryRows + sessions + expiredKeys + usageRows > 0 {
            logger.info("retention sweep", metadata: ["idempotency_records": "\(removedKeys)", "command_log_rows": "\(removedRows)",
                                                      "activity_rows": "\(activityRows)",
                                                      "delivery_rows": "\(deliveryRows)", "browser_sessions": "\(sessions)",
                                                      "expired_plugin_keys": "\(expiredKeys)", "token_usage_rows": "\(usageRows)"])
        }
        return (removedKeys, removedRows)
    }
}
