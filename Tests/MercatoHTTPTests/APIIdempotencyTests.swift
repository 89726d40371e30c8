import Foundation
import HTTPTypes
import NIOHTTP1
import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoStorage
import SQLKit
import MercatoTestSupport
import Testing

/// `Idempotency-Key` on the management API's POSTs (CONTRACT §9).
@Suite("Idempotency-Key on the management API")
struct APIIdempotencyTests {
    static let key = HTTPField.Name("Idempotency-Key")!
    static let replayed = HTTPField.Name("Idempotent-Replayed")!

    @Test(arguments: TestEngines.all)
    func aRetryGetsTheFirstAnswerSealedAnotherBodyConflicts(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let path = "/api/v1/orgs/\(org)/tokens"
            let body = #"{"name":"ci","role":"member"}"#
            let first = try await app.call(.post, path, token: owner, raw: body, headers: [Self.key: "create-ci-1"])
            #expect(first.status == .created)
            #expect(first.headers[Self.replayed] == nil)
            let text = try #require(first.json["token"] as? String)
            let again = try await app.call(.post, path, token: owner, raw: body, headers: [Self.key: "create-ci-1"])
            #expect(again.status == .created)
            #expect(again.headers[Self.replayed] == "true")
            #expect(again.text == first.text)
            #expect(again.headers[.contentType] == first.headers[.contentType])
            let list = try await app.call(.get, path, token: owner)
            #expect((list.json["data"] as? [[String: Any]])?.filter { $0["name"] as? String == "ci" }.count == 1)

            // Kept sealed: the token's text is nowhere in the table.
            let stored = try await app.runtime.database.read { db in
                try await db.raw("SELECT answer FROM api_idempotency").all().map { try $0.decode(column: "answer", as: String?.self) ?? "" }
            }
            #expect(stored.count == 1)
            #expect(stored.allSatisfy { !$0.isEmpty && !$0.contains(text) && !$0.contains("mct_") && !$0.contains("\"token\"") })

            let other = try await app.call(.post, path, token: owner, raw: #"{"name":"ci","role":"admin"}"#, headers: [Self.key: "create-ci-1"])
            expectProblem(other, .conflict, "idempotency_conflict")
            // Another caller's key is its own.
            let operatorCall = try await app.call(.post, path, token: app.operatorToken, raw: body, headers: [Self.key: "create-ci-1"])
            #expect(operatorCall.status == .created && operatorCall.headers[Self.replayed] == nil)

            // A 4xx is kept too.
            let bad = try await app.call(.post, path, token: owner, raw: #"{"name":"","role":"member"}"#, headers: [Self.key: "bad-1"])
            expectProblem(bad, .unprocessableContent, "invalid_request")
            let badAgain = try await app.call(.post, path, token: owner, raw: #"{"name":"","role":"member"}"#, headers: [Self.key: "bad-1"])
            #expect(badAgain.status == .unprocessableContent && badAgain.headers[Self.replayed] == "true")
            #expect(badAgain.headers[.contentType] == "application/problem+json")

            // Swept after 24 hours: the key is free again.
            let later = WallClock { Date().addingTimeInterval(25 * 3600) }
            _ = try await RetentionService(database: app.runtime.database, clock: later, logger: app.logs.logger(), idempotencyHours: 48,
                                           commandLogDays: 30).sweep()
            let count = try await app.runtime.database.read { db in
                try await db.raw("SELECT COUNT(*) AS n FROM api_idempotency").first()?.decode(column: "n", as: Int.self)
            }
            #expect(count == 0)
        }
    }

    /// PostgreSQL: a POST whose COMMIT goes out and gets no answer within the storage deadline
    /// is 503 saying it may have been applied (it was), and its key is not freed: a retry with
    /// it replays that answer rather than running the change twice. A request stopped at its
    /// token's hourly count (a write ahead of its change) gets the plain "retry" answer.
    @Test func aChangeWhoseCommitGotNoAnswerKeepsItsKey() async throws {
        try await withApp(.postgres, deadlines: StorageDeadlines(lease: .seconds(1), statement: .milliseconds(1_500))) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let path = "/api/v1/orgs/\(org)/tokens"
            // A new token's COMMIT takes 2.5 s: a deferred trigger runs at COMMIT.
            try await app.runtime.database.longTransaction { db in
                try await db.raw("CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2.5); RETURN NULL; END $$").run()
                try await db.raw("""
                    CREATE CONSTRAINT TRIGGER slow_token AFTER INSERT ON api_tokens DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION slow_commit()
                    """).run()
            }
            let first = try await app.call(.post, path, token: owner, raw: #"{"name":"slow","role":"member"}"#, headers: [Self.key: "slow-1"])
            expectProblem(first, .serviceUnavailable, "storage_unavailable")
            #expect((first.json["detail"] as? String)?.contains("may have been applied") == true, "\(first.text)")
            try await Task.sleep(for: .milliseconds(2_500))
            let again = try await app.call(.post, path, token: owner, raw: #"{"name":"slow","role":"member"}"#, headers: [Self.key: "slow-1"])
            // The first answer, replayed whole (its body names the first request's id).
            #expect(again.status == .serviceUnavailable && again.json["code"] as? String == "storage_unavailable")
            #expect(again.headers[Self.replayed] == "true", "the key was freed for a second run: \(again.text)")
            // A second run's COMMIT would be done by now.
            try await Task.sleep(for: .milliseconds(2_500))
            let list = try await app.call(.get, path, token: owner)
            #expect((list.json["data"] as? [[String: Any]])?.filter { $0["name"] as? String == "slow" }.count == 1, "\(list.text)")

            // A write of bookkeeping ahead of the request (the token's hourly count) that gets no
            // answer: the request was not served, and its answer does not say it may have been applied.
            try await app.runtime.database.longTransaction { db in
                try await db.raw("""
                    CREATE CONSTRAINT TRIGGER slow_count AFTER INSERT OR UPDATE ON token_hourly_counts DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION slow_commit()
                    """).run()
            }
            let counted = try await app.call(.post, path, token: owner, raw: #"{"name":"never","role":"member"}"#, headers: [Self.key: "never-1"])
            expectProblem(counted, .serviceUnavailable, "storage_unavailable")
            #expect((counted.json["detail"] as? String)?.hasPrefix("Storage is unavailable for the moment; retry") == true, "\(counted.text)")
        }
    }

    @Test(arguments: TestEngines.all)
    func badKeysAre400AndARunningFirstIs409(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let path = "/api/v1/orgs/\(org)/tokens"
            let body = #"{"name":"ci","role":"member"}"#
            for bad in [String(repeating: "k", count: 256), "", "with space"] {
                let answer = try await app.call(.post, path, token: owner, raw: body, headers: [Self.key: bad])
                expectProblem(answer, .badRequest, "invalid_request")
                #expect(answer.text.contains("Idempotency-Key"))
            }
            #expect(try await app.call(.post, path, token: owner, raw: body, headers: [Self.key: String(repeating: "k", count: 255)]).status == .created)

            // The first request with the key still running (its reservation without an answer,
            // its hold not lapsed), and one whose node stopped holding it without an answer.
            let principal = try #require(try await app.runtime.tenancy.authenticate(token: owner))
            guard case .member(_, let scope, _, _) = principal else { Issue.record("not a member"); return }
            let fingerprint = Signatures.sha256Hex(Array("POST \(path)?\napplication/json\n\(body)".utf8))
            let now = Timestamp.nowMillis()
            _ = try await app.runtime.database.transaction { db in
                _ = try await APIIdempotencyStore.reserve(scope: scope, key: "running-1", fingerprint: fingerprint, at: now,
                                                      until: now + 30_000, staleBefore: 0, on: db)
                _ = try await APIIdempotencyStore.reserve(scope: scope, key: "left-1", fingerprint: fingerprint, at: now - 120_000,
                                                      until: now - 90_000, staleBefore: 0, on: db)
            }
            let busy = try await app.call(.post, path, token: owner, raw: body, headers: [Self.key: "running-1"])
            expectProblem(busy, .conflict, "idempotency_in_progress")
            #expect(busy.headers[.retryAfter] == "1")
            let left = try await app.call(.post, path, token: owner, raw: body, headers: [Self.key: "left-1"])
            expectProblem(left, .conflict, "idempotency_outcome_unknown")
            #expect(left.headers[.retryAfter] == nil, "a lapsed hold is not worth a retry with the key")
            let lapsedAt = PluginSupport.timestamp(Date(timeIntervalSince1970: Double(now - 90_000) / 1000))
            #expect((left.json["detail"] as? String)?.contains("may have been applied") == true, "\(left.text)")
            #expect((left.json["detail"] as? String)?.contains(lapsedAt) == true, "\(left.text)")
            // Not run: the first request may have been applied.
            let list = try await app.call(.get, path, token: owner)
            #expect((list.json["data"] as? [[String: Any]])?.filter { $0["name"] as? String == "ci" }.count == 1, "\(list.text)")
        }
    }

    /// The first request's node renews its hold on the key while the request runs, however long
    /// it takes: a copy meanwhile is told it is in progress, and gets the answer once it is kept.
    /// A hold nobody renews lapses into "outcome unknown".
    @Test(arguments: TestEngines.all)
    func aRunningRequestKeepsItsKeyByRenewingItsHold(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let idempotency = APIIdempotency(database: app.runtime.database, vault: app.runtime.vault, clock: .system, leaseMillis: 3_000)
            let claim = APIIdempotency.Claim(scope: "tok_hold", org: nil, key: "slow-1", fingerprint: "f1")
            #expect(try await idempotency.begin(claim) == .first)
            let answer = APIIdempotency.KeptAnswer(status: 201, headers: ["Content-Type": "application/json"], body: Data(#"{"ok":true}"#.utf8))
            let seen = try await idempotency.holding(claim) { () async throws -> [APIIdempotency.Outcome] in
                var seen: [APIIdempotency.Outcome] = []
                for _ in 0 ..< 3 {
                    // Twice the lease in all.
                    try await Task.sleep(for: .milliseconds(2_000))
                    seen.append(try await idempotency.begin(claim))
                }
                return seen
            }
            #expect(seen == Array(repeating: .inProgress, count: 3))
            try await idempotency.keep(answer, for: claim)
            #expect(try await idempotency.begin(claim) == .replay(answer))

            // A hold nobody renews, and a reservation of a node from before leases (no
            // `reserved_until`), held one lease from when it was made.
            let left = APIIdempotency.Claim(scope: "tok_hold", org: nil, key: "left-1", fingerprint: "f1")
            let old = APIIdempotency.Claim(scope: "tok_hold", org: nil, key: "old-1", fingerprint: "f1")
            let now = Timestamp.nowMillis()
            #expect(try await idempotency.begin(left) == .first)
            _ = try await app.runtime.database.transaction { db in
                try await db.raw("""
                    INSERT INTO api_idempotency (scope, idem_key, fingerprint, created_at) VALUES ('tok_hold', 'old-1', 'f1', \(bind: now))
                    """).run()
            }
            #expect(try await idempotency.begin(left) == .inProgress)
            #expect(try await idempotency.begin(old) == .inProgress)
            try await Task.sleep(for: .milliseconds(3_300))
            guard case .outcomeUnknown = try await idempotency.begin(left) else { Issue.record("a lapsed hold is not told apart"); return }
            #expect(try await idempotency.begin(old) == .outcomeUnknown(since: now + 3_000))
            // Another body with that key is still another request.
            #expect(try await idempotency.begin(APIIdempotency.Claim(scope: "tok_hold", org: nil, key: "left-1", fingerprint: "f2")) == .conflict)
        }
    }

    /// Copies of one POST spread over two nodes on one PostgreSQL at once: one runs; the others
    /// are told it is in progress or get its answer again.
    @Test func copiesOverTwoNodesRunOnce() async throws {
        try await withNodes(.postgres, count: 2) { nodes in
            let (org, owner) = try await nodes[0].makeOrg()
            let body = #"{"name":"once","role":"member"}"#
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for i in 0 ..< 12 {
                    group.addTask {
                        try await nodes[i % 2].sendConcurrently(.POST, "/api/v1/orgs/\(org)/tokens", token: owner, body: body,
                                                                headers: ["Idempotency-Key": "nodes-1"])
                    }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            let created = answers.filter { $0.status == .created }
            #expect(created.count >= 1)
            #expect(Set(created.map(\.text)).count == 1)
            for a in answers where a.status != .created {
                #expect(a.status == .conflict && a.json["code"] as? String == "idempotency_in_progress", "\(a.status) \(a.text)")
            }
            let list = try await nodes[1].call(.get, "/api/v1/orgs/\(org)/tokens", token: owner)
            #expect((list.json["data"] as? [[String: Any]])?.filter { $0["name"] as? String == "once" }.count == 1)
        }
    }
}
