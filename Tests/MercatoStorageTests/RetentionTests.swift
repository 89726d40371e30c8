import Foundation
import SQLKit
import MercatoCore
import MercatoStorage
import MercatoTestSupport
import Testing

@Suite("Retention of idempotency records and command logs, on both engines")
struct RetentionTests {
    /// An answer stored over a refusal's row (the same body refused 49 hours before, e.g. rate
    /// limited) is kept its whole window from the answer, not from the refusal.
    @Test(arguments: TestEngines.all)
    func anAnswerAfterAnOldRefusalIsKeptItsWholeWindow(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test in
            let clock = ManualClock()
            let now = clock.wallClock.millis
            let hour: Int64 = 3_600_000
            try await test.database.transaction { db in
                _ = try await CommandStore.insertIdempotency(IdempotencyRecord(appId: "app_x", webhookId: "msg_late", bodySha256: "h",
                                                                           httpStatus: IdempotencyRecord.unanswered, response: "", createdAt: now - 49 * hour), on: db)
            }
            try await CommandStore.insertAnswered([], [IdempotencyRecord(appId: "app_x", webhookId: "msg_late", bodySha256: "h", httpStatus: 200,
                                                                         response: "{}", createdAt: now)], in: test.database)
            let service = RetentionService(database: test.database, clock: clock.wallClock, logger: TestDatabase.logger, idempotencyHours: 48, commandLogDays: 30)
            _ = try await service.sweep()
            let record = try await test.database.read { try await CommandStore.idempotency(app: "app_x", webhookID: "msg_late", on: $0) }
            #expect(record?.httpStatus == 200 && record?.createdAt == now)
        }
    }

    @Test(arguments: TestEngines.all)
    func oldRecordsGoRecentOnesStay(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test in
            let clock = ManualClock()
            let now = clock.wallClock.millis
            let hour: Int64 = 3_600_000
            try await test.database.transaction { db in
                for (i, age) in [1, 23, 47, 49, 100].enumerated() {
                    try await CommandStore.insertIdempotency(IdempotencyRecord(appId: "app_x", webhookId: "msg_\(i)", bodySha256: "h", httpStatus: 200,
                                                                               response: "{}", createdAt: now - Int64(age) * hour), on: db)
                }
                for (i, days) in [1, 29, 31, 60].enumerated() {
                    try await CommandStore.insert(CommandLogRecord(id: RecordID.make("cmd", millis: now - Int64(days) * 24 * hour + Int64(i)), installId: "ins_x", appId: "app_x",
                                                                   orgId: "org_x", command: "ping", webhookId: "m\(i)", bodySha256: "h", outcome: "succeeded",
                                                                   httpStatus: 200, durationUs: 1, createdAt: now - Int64(days) * 24 * hour), on: db)
                }
                // Activity rows: dispatched 8 days ago (goes), 6 days ago (stays), never (stays).
                for (i, done) in [Int64?.some(8), 6, nil].enumerated() {
                    try await ActivityLog.record(org: "org_x", actor: "usr_x", action: "token.created", target: "tok_\(i)", requestID: nil,
                                                 at: now - 10 * 24 * hour, on: db)
                    if let done {
                        try await db.raw("UPDATE audit_log SET hooks_done_at = \(bind: now - done * 24 * hour) WHERE target = \(bind: "tok_\(i)")").run()
                    }
                }
                // Deliveries: a finished one from 40 days ago goes with its attempt and event; a
                // pending one of the same age stays, and so does its event.
                for (i, status) in ["delivered", "pending"].enumerated() {
                    let at = now - 40 * 24 * hour
                    try await OutboxStore.insert([OutboxEventRecord(id: "msg_old\(i)", orgId: "org_x", installId: "ins_x", appId: "app_x", type: "app.installed",
                                                                    payload: "{}", createdAt: at, dispatchedAt: at)], on: db)
                    try await db.raw("UPDATE outbox_events SET hooks_done_at = \(bind: at) WHERE id = \(bind: "msg_old\(i)")").run()
                    try await DeliveryStore.insert(id: "msg_old\(i)", appID: "app_x", orgID: "org_x", installID: "ins_x", type: "app.installed",
                                                   url: "https://x.example/h", at: at, on: db)
                    try await db.raw("UPDATE webhook_deliveries SET status = \(bind: status) WHERE id = \(bind: "msg_old\(i)")").run()
                    try await DeliveryStore.insertAttempt(AttemptRecord(deliveryId: "msg_old\(i)", appId: "app_x", attempt: 1, statusCode: 200, durationMs: 1,
                                                                        responseBody: nil, error: nil, createdAt: at), on: db)
                }
            }
            let service = RetentionService(database: test.database, clock: clock.wallClock, logger: TestDatabase.logger, idempotencyHours: 48, commandLogDays: 30)
            let removed = try await service.sweep()
            #expect(removed.idempotency == 2)
            #expect(removed.log == 2)
            for (i, kept) in [true, true, true, false, false].enumerated() {
                let record = try await test.database.read { try await CommandStore.idempotency(app: "app_x", webhookID: "msg_\(i)", on: $0) }
                #expect((record != nil) == kept, "msg_\(i)")
            }
            let activity = try await test.database.read { db in
                try await db.raw("SELECT target FROM audit_log ORDER BY target").all().map { try $0.decode(column: "target", as: String.self) }
            }
            #expect(activity == ["tok_1", "tok_2"])
            let left = try await test.database.read { db in
                (try await db.raw("SELECT id FROM webhook_deliveries ORDER BY id").all().map { try $0.decode(column: "id", as: String.self) },
                 try await db.raw("SELECT COUNT(*) AS n FROM webhook_attempts").first()!.decode(column: "n", as: Int.self),
                 try await db.raw("SELECT id FROM outbox_events ORDER BY id").all().map { try $0.decode(column: "id", as: String.self) })
            }
            #expect(left.0 == ["msg_old1"])
            #expect(left.1 == 0)
            #expect(left.2 == ["msg_old1"])
            #expect(try await service.sweep() == (0, 0))
        }
    }
}
