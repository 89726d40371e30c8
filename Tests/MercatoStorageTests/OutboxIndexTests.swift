import Foundation
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// Migration 45: the outbox's two "pending" indexes hold only the events still pending, and the
/// fan-out and the hook dispatcher still find those (and only those) through them.
@Suite("The outbox's pending indexes, on both engines")
struct OutboxIndexTests {
    static func event(_ id: String, dispatched: Int64?, hooksDone: Int64?) -> OutboxEventRecord {
        OutboxEventRecord(id: id, orgId: "org_x", installId: "ins_x", appId: "app_x", type: "task.created", payload: "{}", createdAt: 1,
                          dispatchedAt: dispatched, hooksDoneAt: hooksDone)
    }

    @Test(arguments: TestEngines.all)
    func pendingEventsAreFoundAndHandledOnesAreNotIndexed(engine: StorageEngine) async throws {
        try await withTestDatabase(engine, migrate: false) { test async throws in
            let db = test.database
            let upTo44 = MigrationRunner(migrations: Schema.runner.migrations.filter { $0.id <= 44 })
            _ = try await upTo44.migrate(db, logger: TestDatabase.logger)
            try await db.transaction { db in
                // Written before the migration: one waiting for the fan-out, one for its hooks.
                try await OutboxStore.insert([Self.event("msg_1", dispatched: nil, hooksDone: 1)], on: db)
                try await OutboxStore.insert([Self.event("msg_2", dispatched: 1, hooksDone: nil)], on: db)
            }
            #expect(try await MigrationRunner(migrations: Schema.runner.migrations.filter { $0.id <= 45 }).migrate(db, logger: TestDatabase.logger) == [45])
            try await db.transaction { db in
                // After it: one handled at once (a plugin's event, routed in its write), one pending.
                try await OutboxStore.insert([Self.event("msg_3", dispatched: 1, hooksDone: 1), Self.event("msg_4", dispatched: nil, hooksDone: nil)], on: db)
            }
            for (index, condition) in [("outbox_events_pending", "dispatched_at IS NULL"), ("outbox_events_hooks_pending", "hooks_done_at IS NULL")] {
                let definition: SQLQueryString = engine == .sqlite
                    ? "SELECT sql AS definition FROM sqlite_master WHERE type = 'index' AND name = \(bind: index)"
                    : "SELECT indexdef AS definition FROM pg_indexes WHERE indexname = \(bind: index)"
                let text = try await db.read { try await $0.raw(definition).first()?.decode(column: "definition", as: String.self) }
                #expect(text?.contains(condition) == true, "\(text ?? "no index \(index)")")
            }
            let undispatched = try await db.transaction { try await DeliveryStore.undispatched(limit: 10, on: $0) }
            #expect(undispatched.map(\.id) == ["msg_1", "msg_4"])
            let claimed = try await db.transaction { try await HookFeedStore.claim(.events, limit: 10, now: 10, leaseUntil: 20, on: $0) }
            #expect(claimed.map(\.id) == ["msg_2", "msg_4"])
            if engine == .sqlite {
                // The index answers the fan-out's question, and holds only the pending rows.
                let plan = try await db.read { db in
                    try await db.raw("EXPLAIN QUERY PLAN SELECT id FROM outbox_events WHERE dispatched_at IS NULL ORDER BY id LIMIT 10").all()
                        .map { try $0.decode(column: "detail", as: String.self) }
                }
                #expect(plan.contains { $0.contains("outbox_events_pending") }, "\(plan)")
                let indexed = try await db.read { db in
                    try await db.raw("SELECT COUNT(*) AS n FROM outbox_events INDEXED BY outbox_events_hooks_pending WHERE hooks_done_at IS NULL").first()?
                        .decode(column: "n", as: Int.self)
                }
                #expect(indexed == 2)
            }
        }
    }
}
