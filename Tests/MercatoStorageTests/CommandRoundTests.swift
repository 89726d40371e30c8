import Foundation
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// On PostgreSQL the gateway's steps of all waiting commands (checks, key reservations, records)
/// go in one statement a round (`CommandStore.run`). Each kind must answer as its own statement
/// does, whatever else shares the round.
@Suite("Command rounds: checks, reservations and records in one statement (PostgreSQL)")
struct CommandRoundTests {
    func run(_ round: CommandStore.Round, in db: Database) async throws -> (checks: [CommandCheck?], taken: [CommandStore.Claim]) {
        try #require(try await db.withPostgres { try await CommandStore.run(round, on: $0, logger: db.logger) })
    }

    func claim(_ webhook: String, body: String = "b1", now: Int64, lease: Int64 = 1000) -> CommandStore.Reservation {
        CommandStore.Reservation(appId: "app_1", webhookId: webhook, bodySha256: body, until: now + lease, now: now)
    }

    func log(_ id: String, webhook: String, status: Int = 200) -> CommandLogRecord {
        CommandLogRecord(id: id, installId: "ins_1", appId: "app_1", orgId: "org_1", command: "ping", webhookId: webhook, bodySha256: "b1",
                         outcome: status == 200 ? "succeeded" : "rate_limited", httpStatus: status, durationUs: 12, createdAt: 10)
    }

    @Test func eachStepAnswersAsItsOwnStatementWouldWhateverSharesTheRound() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let db = test.database
            try await CommandStampTests().insertInstall(db)
            try await db.transaction {
                try await CommandStore.insertIdempotency([IdempotencyRecord(appId: "app_1", webhookId: "answered", bodySha256: "h", httpStatus: 201,
                                                                            response: "{\"ok\":true}", createdAt: 9)], on: $0)
            }
            let keys = [("ins_1", "new"), ("ins_none", "answered"), ("ins_1", "answered"), ("ins_1", "other")]
                .map { CommandStore.CheckKey(install: $0.0, webhookID: $0.1) }
            let alone = try await CommandStore.checks(keys, in: db)
            #expect(alone[2]?.idempotency?.httpStatus == 201 && alone[1] == nil && alone[0] != nil)

            // Every kind at once: checks answered in order, new keys taken (a second claim of one
            // key in the round not), the log rows and kept answers committed.
            var round = CommandStore.Round()
            round.checks = keys
            round.reservations = [claim("w1", now: 100), claim("w2", now: 100), claim("w1", now: 100), claim("answered", body: "h", now: 100)]
            round.logs = [log("cmd_1", webhook: "done"), log("cmd_2", webhook: "refused", status: 429)]
            round.answers = [IdempotencyRecord(appId: "app_1", webhookId: "done", bodySha256: "b1", httpStatus: 200, response: "{}", createdAt: 10),
                             IdempotencyRecord(appId: "app_1", webhookId: "refused", bodySha256: "b1", httpStatus: IdempotencyRecord.unanswered,
                                               response: "", createdAt: 10)]
            var (checks, taken) = try await run(round, in: db)
            #expect(checks == alone)
            #expect(taken == [.taken(newRow: true), .taken(newRow: true), .refused, .refused])
            let logged = try await db.read { try await CommandStore.log(where: "install_id", equals: "ins_1", filter: CommandLogFilter(), beforeID: nil, limit: 10, on: $0) }
            #expect(logged.sorted { $0.id < $1.id } == [log("cmd_1", webhook: "done"), log("cmd_2", webhook: "refused", status: 429)])
            #expect(try await db.read { try await CommandStore.idempotency(app: "app_1", webhookID: "done", on: $0) }?.httpStatus == 200)

            // What the round wrote is what later rounds see: the answered key and the live
            // reservation hold their keys, the kept body hash (a refusal) frees its key; more
            // checks than one execution's slots answer in order.
            round = CommandStore.Round()
            round.reservations = [claim("done", now: 200), claim("w1", now: 200), claim("refused", now: 200), claim("w3", now: 200)]
            round.checks = (0..<39).map { keys[$0 % keys.count] } + [CommandStore.CheckKey(install: "ins_1", webhookID: "done")]
            #expect(round.checks.count > 4 * CommandStore.checkSlots)
            (checks, taken) = try await run(round, in: db)
            #expect(taken == [.refused, .refused, .taken(newRow: false), .taken(newRow: true)])
            #expect(Array(checks.prefix(39)) == (0..<39).map { alone[$0 % keys.count] })
            #expect(checks.last??.idempotency?.httpStatus == 200)

            // A round with one kind only, and an empty one.
            round = CommandStore.Round()
            round.logs = [log("cmd_3", webhook: "w1")]
            round.answers = [IdempotencyRecord(appId: "app_1", webhookId: "w1", bodySha256: "b1", httpStatus: 200, response: "{\"n\":1}", createdAt: 20)]
            (checks, taken) = try await run(round, in: db)
            #expect(checks.isEmpty && taken.isEmpty)
            let answered = try await db.read { try await CommandStore.idempotency(app: "app_1", webhookID: "w1", on: $0) }
            #expect(answered?.httpStatus == 200 && answered?.response == "{\"n\":1}")
            // Its window runs from its reservation (100), kept by the answer; a refusal's row
            // taken again by a reservation starts again then (200).
            #expect(answered?.createdAt == 100)
            #expect(try await db.read { try await CommandStore.idempotency(app: "app_1", webhookID: "refused", on: $0) }?.createdAt == 200)
            // An answer stored over a refusal's row without a reservation has the answer's time.
            round = CommandStore.Round()
            round.answers = [IdempotencyRecord(appId: "app_1", webhookId: "late", bodySha256: "b1", httpStatus: IdempotencyRecord.unanswered, response: "", createdAt: 30)]
            _ = try await run(round, in: db)
            round.answers = [IdempotencyRecord(appId: "app_1", webhookId: "late", bodySha256: "b1", httpStatus: 200, response: "{}", createdAt: 300)]
            _ = try await run(round, in: db)
            let late = try await db.read { try await CommandStore.idempotency(app: "app_1", webhookID: "late", on: $0) }
            #expect(late?.httpStatus == 200 && late?.createdAt == 300)
            (checks, taken) = try await run(CommandStore.Round(), in: db)
            #expect(checks.isEmpty && taken.isEmpty)
        }
    }

    /// The gateway checks a key and claims it in one round: the check reads the key as it was
    /// before the claim, and a claim the command will not answer is given back as it was taken.
    @Test func aKeysCheckBesideItsClaimReadsItBeforeTheClaimAndAReleaseUndoesTheClaim() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let db = test.database
            try await CommandStampTests().insertInstall(db)
            func stored(_ webhook: String) async throws -> IdempotencyRecord? {
                try await db.read { try await CommandStore.idempotency(app: "app_1", webhookID: webhook, on: $0) }
            }
            // A refusal's row (body hash only) for "kept"; nothing for "fresh".
            var round = CommandStore.Round()
            round.answers = [IdempotencyRecord(appId: "app_1", webhookId: "kept", bodySha256: "b1", httpStatus: IdempotencyRecord.unanswered, response: "", createdAt: 50)]
            _ = try await run(round, in: db)

            round = CommandStore.Round()
            round.checks = [CommandStore.CheckKey(install: "ins_1", webhookID: "fresh"), CommandStore.CheckKey(install: "ins_1", webhookID: "kept")]
            let fresh = claim("fresh", now: 100), kept = claim("kept", now: 100)
            round.reservations = [fresh, kept]
            var (checks, taken) = try await run(round, in: db)
            #expect(checks.count == 2 && checks[0]?.idempotency == nil)
            #expect(checks[1]?.idempotency?.bodySha256 == "b1" && checks[1]?.idempotency?.httpStatus == IdempotencyRecord.unanswered)
            #expect(taken == [.taken(newRow: true), .taken(newRow: false)])
            #expect(try await stored("fresh") != nil)

            // Held: another claim is refused. Given back: the new row goes, the refusal's row
            // stays bound to its body without the reservation, and both can be claimed at once.
            round = CommandStore.Round()
            round.reservations = [claim("fresh", now: 200), claim("kept", now: 200)]
            (_, taken) = try await run(round, in: db)
            #expect(taken == [.refused, .refused])
            // A release of a reservation that is no longer the holder's changes nothing.
            var stale = fresh
            stale.until -= 1
            try await CommandStore.release(stale, newRow: true, in: db)
            #expect(try await stored("fresh") != nil)
            try await CommandStore.release(fresh, newRow: true, in: db)
            try await CommandStore.release(kept, newRow: false, in: db)
            #expect(try await stored("fresh") == nil)
            #expect(try await stored("kept")?.bodySha256 == "b1")
            (_, taken) = try await run(round, in: db)
            #expect(taken == [.taken(newRow: true), .taken(newRow: false)])
            // Another body under a refusal's key is still refused after a release.
            try await CommandStore.release(claim("kept", now: 200), newRow: false, in: db)
            round.reservations = [claim("kept", body: "b2", now: 300)]
            (checks, taken) = try await run(round, in: db)
            #expect(taken == [.refused])
        }
    }

    /// A key given back on the request path answers within the statement deadline, as the check
    /// that took it does: a release caught behind a lock (or a server stopping) is told storage is
    /// unavailable, and its key lapses with its lease, rather than holding the request.
    @Test func aReleaseIsBoundedByTheStatementDeadline() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let bounded = try await Database.open(test.location, logger: TestDatabase.logger,
                                                  deadlines: StorageDeadlines(lease: .seconds(1), statement: .seconds(2)))
            _ = try await bounded.read { try await $0.raw("SELECT 1 AS one").first() }
            var round = CommandStore.Round()
            let held = claim("held", now: 100)
            round.reservations = [held]
            #expect(try await run(round, in: test.database).taken == [.taken(newRow: true)])
            // Another session holds the table for 6 s.
            let locked = Task {
                try await test.database.transaction { db in
                    try await db.raw("LOCK TABLE command_idempotency IN ACCESS EXCLUSIVE MODE").run()
                    try await db.raw("SELECT pg_sleep(6)").run()
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            let start = ContinuousClock.now
            await #expect(throws: StorageUnavailable.self) { try await CommandStore.release(held, newRow: true, in: bounded) }
            let waited = ContinuousClock.now - start
            #expect(waited < .milliseconds(3_500), "answered after \(waited)")
            try await locked.value
            await bounded.close()
        }
    }
}
