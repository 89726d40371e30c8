import Foundation
import MercatoCore
import MercatoStorage
import MercatoTestSupport
import Testing

@Suite("Retention of idempotency records and command logs, on both engines")
struct RetentionTests {
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
            }
            let service = RetentionService(database: test.database, clock: clock.wallClock, logger: TestDatabase.logger, idempotencyHours: 48, commandLogDays: 30)
            let removed = try await service.sweep()
            #expect(removed.idempotency == 2)
            #expect(removed.log == 2)
            for (i, kept) in [true, true, true, false, false].enumerated() {
                let record = try await test.database.read { try await CommandStore.idempotency(app: "app_x", webhookID: "msg_\(i)", on: $0) }
                #expect((record != nil) == kept, "msg_\(i)")
            }
            #expect(try await service.sweep() == (0, 0))
        }
    }
}
