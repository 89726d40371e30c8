import Foundation
import MercatoStorage
import MercatoTestSupport
import Testing

/// CONTRACT §12: a handler runs at most once per (app, webhook-id) across nodes. On PostgreSQL a
/// node claims the key (in the round that checks it) before running its handler; these are the
/// claim's rules.
@Suite("Idempotency reservations across nodes (PostgreSQL)")
struct ReservationTests {
    func claim(_ webhook: String, body: String = "b1", now: Int64, lease: Int64 = 1000) -> CommandStore.Reservation {
        CommandStore.Reservation(appId: "app_1", webhookId: webhook, bodySha256: body, until: now + lease, now: now)
    }

    @Test func aKeyIsTakenOnceUntilItsLeaseLapsesOrItIsAnswered() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let db = test.database
            // Reservations alone in a round (the gateway sends each with its key's check).
            func reserve(_ batch: [CommandStore.Reservation]) async throws -> [Bool] {
                var built = CommandStore.Round()
                built.reservations = batch
                let round = built
                let taken = try #require(try await db.withPostgres { try await CommandStore.run(round, on: $0, logger: db.logger) }).taken
                return taken.map { $0 != .refused }
            }
            // New keys are taken; a second claim of a key in the same batch is not.
            #expect(try await reserve([claim("w1", now: 100), claim("w2", now: 100), claim("w1", now: 100)]) == [true, true, false])
            // A live reservation holds the key against every other claim.
            #expect(try await reserve([claim("w1", now: 500)]) == [false])
            // Past its lease (the node died), the same body takes it over; another body never does.
            #expect(try await reserve([claim("w1", body: "b2", now: 1200)]) == [false])
            #expect(try await reserve([claim("w1", now: 1200)]) == [true])
            // An answer clears the reservation and keeps the key answered: no claim takes it again.
            try await db.transaction {
                try await CommandStore.insertIdempotency([IdempotencyRecord(appId: "app_1", webhookId: "w1", bodySha256: "b1", httpStatus: 200,
                                                                            response: "{}", createdAt: 1300)], on: $0)
            }
            #expect(try await reserve([claim("w1", now: 99_999)]) == [false])
            #expect(try await db.read { try await CommandStore.idempotency(app: "app_1", webhookID: "w1", on: $0) }?.httpStatus == 200)
            // A "not now" (kept unanswered, body hash only) frees the key at once for a retry.
            try await db.transaction {
                try await CommandStore.insertIdempotency([IdempotencyRecord(appId: "app_1", webhookId: "w2", bodySha256: "b1",
                                                                            httpStatus: IdempotencyRecord.unanswered, response: "", createdAt: 150)], on: $0)
            }
            #expect(try await reserve([claim("w2", now: 200)]) == [true])
        }
    }
}
