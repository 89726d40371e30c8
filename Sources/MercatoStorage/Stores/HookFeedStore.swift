import Foundation
public import SQLKit

/// The dispatch state of the two feeds plugins' "has been" hooks run from: outbox events
/// (install hooks) and audit rows (activity hooks). Rows are claimed under a lease, so several
/// nodes on PostgreSQL share the work (`FOR UPDATE SKIP LOCKED`); SQLite has one writer, whose
/// transaction already serialises claims.
public enum HookFeedStore {
    public enum Feed: String, Sendable, CaseIterable {
        case events = "outbox_events"
        case activity = "audit_log"
    }

    /// A claimed row: its id, the attempts so far and the plugins that still owe the hook
    /// (`nil`: every plugin).
    public struct Claim: Sendable, Equatable {
        public var id: String
        public var attempts: Int
        public var pending: [String]?
    }

    /// Claims up to `limit` due rows, oldest first, until `leaseUntil`.
    public static func claim(_ feed: Feed, limit: Int, now: Int64, leaseUntil: Int64, on db: any SQLDatabase) async throws -> [Claim] {
        let lock = db.dialect.name == "postgresql" ? " FOR UPDATE SKIP LOCKED" : ""
        let rows = try await db.raw("""
            UPDATE \(unsafeRaw: feed.rawValue) SET hooks_lease_until = \(bind: leaseUntil)
            WHERE id IN (
                SELECT id FROM \(unsafeRaw: feed.rawValue)
                WHERE hooks_done_at IS NULL AND COALESCE(hooks_next_at, 0) <= \(bind: now) AND COALESCE(hooks_lease_until, 0) <= \(bind: now)
                ORDER BY id LIMIT \(bind: limit)\(unsafeRaw: lock)
            )
            RETURNING id, hooks_attempts, hooks_pending
            """).all()
        return try rows.map { row in
            let pending = try row.decodeNil(column: "hooks_pending") ? nil : try row.decode(column: "hooks_pending", as: String.self)
            return Claim(id: try row.decode(column: "id", as: String.self), attempts: try row.decode(column: "hooks_attempts", as: Int.self),
                         pending: try pending.map(StoredList.decode))
        }.sorted { $0.id < $1.id }
    }

    /// Every plugin ran the hook: the row is done.
    public static func complete(_ feed: Feed, id: String, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE \(unsafeRaw: feed.rawValue) SET hooks_done_at = \(bind: millis), hooks_pending = NULL, hooks_lease_until = NULL
            WHERE id = \(bind: id)
            """).run()
    }

    /// Some plugins still owe the hook: try them again at `nextAt`. `countAttempt` is false
    /// when none failed (they were only skipped, e.g. disabled).
    public static func reschedule(_ feed: Feed, id: String, pending: [String], nextAt: Int64, countAttempt: Bool, on db: any SQLDatabase) async throws {
        let list = StoredList.text(pending)
        try await db.raw("""
            UPDATE \(unsafeRaw: feed.rawValue) SET hooks_pending = \(bind: list), hooks_next_at = \(bind: nextAt), hooks_lease_until = NULL,
                hooks_attempts = hooks_attempts + \(bind: countAttempt ? 1 : 0)
            WHERE id = \(bind: id)
            """).run()
    }

    /// Rows not done yet, for `/readyz` detail and tests.
    public static func pendingCount(_ feed: Feed, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: feed.rawValue) WHERE hooks_done_at IS NULL").first()?.decode(column: "n", as: Int.self) ?? 0
    }
}

extension OutboxStore {
    public static func find(id: String, on db: any SQLDatabase) async throws -> OutboxEventRecord? {
        try await db.raw("SELECT id, org_id, install_id, app_id, type, payload, created_at, dispatched_at FROM outbox_events WHERE id = \(bind: id)")
            .first(decoding: OutboxEventRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }
}

extension AuditStore {
    public static func find(id: String, on db: any SQLDatabase) async throws -> AuditRecord? {
        try await db.raw("SELECT id, org_id, actor, action, target, request_id, details, created_at FROM audit_log WHERE id = \(bind: id)")
            .first(decoding: AuditRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Activity rows whose hooks ran before `cutoff`: the plugins keep their own records.
    @discardableResult
    public static func pruneDispatched(before cutoff: Int64, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("DELETE FROM audit_log WHERE hooks_done_at IS NOT NULL AND hooks_done_at < \(bind: cutoff) RETURNING id").all().count
    }
}
