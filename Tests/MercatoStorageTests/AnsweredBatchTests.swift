import Foundation
import MercatoStorage
import MercatoTestSupport
import Testing

/// A command batch's rows as the gateway's group commit stores them
/// (`CommandStore.insertAnswered`: one statement on PostgreSQL, two in a transaction on SQLite).
@Suite("A command batch's log rows and answers")
struct AnsweredBatchTests {
    func log(_ id: String, webhook: String, at time: Int64) -> CommandLogRecord {
        CommandLogRecord(id: id, installId: "inst_1", appId: "app_1", orgId: "org_1", command: "ping", webhookId: webhook,
                         bodySha256: "b1", outcome: "succeeded", httpStatus: 200, durationUs: 40, createdAt: time)
    }

    func answer(_ webhook: String, status: Int = 200, response: String, at time: Int64) -> IdempotencyRecord {
        IdempotencyRecord(appId: "app_1", webhookId: webhook, bodySha256: "b1", httpStatus: status, response: response, createdAt: time)
    }

    func logIDs(_ db: Database) async throws -> [String] {
        try await db.read {
            try await CommandStore.log(where: "app_id", equals: "app_1", filter: CommandLogFilter(), beforeID: nil, limit: 100, on: $0)
        }.map(\.id).sorted()
    }

    func stored(_ db: Database, _ webhook: String) async throws -> IdempotencyRecord? {
        try await db.read { try await CommandStore.idempotency(app: "app_1", webhookID: webhook, on: $0) }
    }

    /// What the group commit runs for one batch.
    func commit(_ db: Database, _ logs: [CommandLogRecord], _ answers: [IdempotencyRecord]) async throws {
        try await CommandStore.insertAnswered(logs, answers, in: db)
    }

    @Test(arguments: TestEngines.all)
    func logsAndAnswersAreStoredTogetherAndTheFirstAnswerStays(_ engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let db = test.database
            try await commit(db, [log("cl_1", webhook: "w1", at: 100), log("cl_2", webhook: "w2", at: 100), log("cl_3", webhook: "w3", at: 100)],
                             [answer("w1", response: #"{"n":1}"#, at: 100), answer("w2", response: #"{"n":2}"#, at: 100)])
            #expect(try await logIDs(db) == ["cl_1", "cl_2", "cl_3"])
            #expect(try await stored(db, "w1")?.response == #"{"n":1}"#)
            #expect(try await stored(db, "w2")?.response == #"{"n":2}"#)
            #expect(try await stored(db, "w3") == nil)

            // Only log rows (no answer kept), then an answer for a key another node already answered:
            // the first answer stays.
            try await commit(db, [log("cl_4", webhook: "w4", at: 200)], [])
            try await commit(db, [log("cl_5", webhook: "w1", at: 300)], [answer("w1", response: #"{"n":9}"#, at: 300)])
            #expect(try await logIDs(db) == ["cl_1", "cl_2", "cl_3", "cl_4", "cl_5"])
            #expect(try await stored(db, "w1")?.response == #"{"n":1}"#)
            #expect(try await stored(db, "w1")?.createdAt == 100)

            // A key kept unanswered (refused before its handler) takes the answer that comes later.
            try await commit(db, [log("cl_6", webhook: "w6", at: 400)],
                             [answer("w6", status: IdempotencyRecord.unanswered, response: "", at: 400)])
            #expect(try await stored(db, "w6")?.httpStatus == IdempotencyRecord.unanswered)
            try await commit(db, [log("cl_7", webhook: "w6", at: 500)], [answer("w6", status: 201, response: #"{"n":6}"#, at: 500)])
            let w6 = try await stored(db, "w6")
            #expect(w6?.httpStatus == 201)
            #expect(w6?.response == #"{"n":6}"#)
        }
    }

    @Test(arguments: TestEngines.all)
    func aFailingLogRowStoresNothingOfItsBatch(_ engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let db = test.database
            try await commit(db, [log("cl_1", webhook: "w1", at: 100)], [answer("w1", response: "{}", at: 100)])
            // cl_1 again: its primary key refuses the row, and the batch's answer goes with it.
            await #expect(throws: (any Error).self) {
                try await commit(db, [log("cl_2", webhook: "w2", at: 200), log("cl_1", webhook: "w3", at: 200)],
                                 [answer("w2", response: "{}", at: 200), answer("w3", response: "{}", at: 200)])
            }
            #expect(try await logIDs(db) == ["cl_1"])
            #expect(try await stored(db, "w2") == nil)
            #expect(try await stored(db, "w3") == nil)
        }
    }
}
