public import Logging
public import PostgresNIO

/// The command path's batched writes on PostgreSQL as named prepared statements: each is parsed
/// once per connection and, after its first executions, keeps its generic plan, where the same
/// text sent unnamed was parsed and planned at every batch (parse and plan took 2-4 times the
/// execution: 0.3-0.7 ms against 0.15 ms, `log_min_duration_statement` on an idle server).
/// Arrays (one per column) keep one text for any batch size.
extension CommandStore {
    /// When a reservation takes a key that already has a row: only an unanswered row of the
    /// same body whose reservation (if any) has run out.
    static let reservationConflict = """
        ON CONFLICT (app_id, webhook_id) DO UPDATE SET reserved_until = excluded.reserved_until, created_at = excluded.created_at
            WHERE command_idempotency.http_status = 0 AND command_idempotency.body_sha256 = excluded.body_sha256
                AND COALESCE(command_idempotency.reserved_until, 0) < excluded.created_at
        """

    /// The reservations of a round (``RoundStatement``) as its five arrays, in the statement's
    /// parameter order.
    enum ReservationArrays {
        static func bind(_ batch: [Reservation], into bindings: inout PostgresBindings) {
            bindings.append(batch.map(\.appId))
            bindings.append(batch.map(\.webhookId))
            bindings.append(batch.map(\.bodySha256))
            bindings.append(batch.map(\.now))
            bindings.append(batch.map(\.until))
        }
    }

    /// ``insertAnswered(_:_:on:)`` on a PostgreSQL connection: the log rows and the kept answers
    /// in one named prepared statement (either list may be empty).
    public static func insertAnswered(_ logs: [CommandLogRecord], _ answers: [IdempotencyRecord], on connection: PostgresConnection,
                                      logger: Logger) async throws {
        for try await _ in try await connection.execute(AnsweredStatement(logs: logs, answers: answers), logger: logger) {}
    }

    struct AnsweredStatement: PostgresPreparedStatement {
        static let name = "mercato_command_answered"
        static let sql = """
            WITH logged AS (
                INSERT INTO command_log (\(logColumns))
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                                     $9::bigint[], $10::bigint[], $11::bigint[])
            )
            INSERT INTO command_idempotency (app_id, webhook_id, body_sha256, http_status, response, created_at)
            SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::bigint[], $16::text[], $17::bigint[])
            \(keepFirstAnswer)
            """
        typealias Row = Void
        var logs: [CommandLogRecord]
        var answers: [IdempotencyRecord]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 17)
            Self.bind(logs: logs, answers: answers, into: &bindings)
            return bindings
        }

        /// The rows' seventeen arrays, in the statement's parameter order.
        static func bind(logs: [CommandLogRecord], answers: [IdempotencyRecord], into bindings: inout PostgresBindings) {
            bindings.append(logs.map(\.id))
            bindings.append(logs.map(\.installId))
            bindings.append(logs.map(\.appId))
            bindings.append(logs.map(\.orgId))
            bindings.append(logs.map(\.command))
            bindings.append(logs.map(\.webhookId))
            bindings.append(logs.map(\.bodySha256))
            bindings.append(logs.map(\.outcome))
            bindings.append(logs.map { Int64($0.httpStatus) })
            bindings.append(logs.map(\.durationUs))
            bindings.append(logs.map(\.createdAt))
            bindings.append(answers.map(\.appId))
            bindings.append(answers.map(\.webhookId))
            bindings.append(answers.map(\.bodySha256))
            bindings.append(answers.map { Int64($0.httpStatus) })
            bindings.append(answers.map(\.response))
            bindings.append(answers.map(\.createdAt))
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    /// Takes what each key's state allows of its claim, in one transaction with the keys' rows
    /// locked in key order (so batches of several nodes never deadlock); answers, per key, the
    /// arrival time the claim started from and how many requests were taken. The state never
    /// moves back: a batch whose `now` is older than another node's already committed one (its
    /// requests waited longer) starts from the stored time, so late batches cannot lower it and
    /// let more through. PostgreSQL only: on SQLite one process serves and keeps the state.
    ///
    /// The rows are locked until the transaction ends, and every node's batch for the
    /// same install waits for them: the transaction commits without waiting for its WAL flush
    /// (`synchronous_commit = off`; a rate update lost to a PostgreSQL crash only lets a burst
    /// through again), and a key's row is created only when it has none (an insert of an existing
    /// row would wait for the transaction that last updated it).
    /// The claim is a named prepared statement, a transaction by itself (which sets its own
    /// `synchronous_commit`): one round trip while every key has its row. The keys without one
    /// are claimed again in a transaction of their own that creates their rows first.
    public static func takeRates(_ claims: [RateClaim], on connection: PostgresConnection, logger: Logger) async throws -> [String: (base: Double, taken: Int)] {
        precondition(Set(claims.map(\.key)).count == claims.count, "one claim per key")
        var result = try await claimRates(claims, on: connection, logger: logger)
        // A key with no row yet (its first request, or the retention sweep removed it: it owed
        // nothing) gets one, and its claim is taken again.
        let missing = claims.filter { result[$0.key] == nil }
        guard !missing.isEmpty else { return result }
        try await connection.query("BEGIN", logger: logger)
        do {
            let keys = missing.map(\.key)
            try await connection.query("INSERT INTO install_rate_state (install_id, tat) SELECT k, 0 FROM unnest(\(keys)::text[]) AS t(k) ON CONFLICT DO NOTHING",
                                       logger: logger)
            result.merge(try await claimRates(missing, on: connection, logger: logger)) { first, _ in first }
            try await connection.query("COMMIT", logger: logger)
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    private static func claimRates(_ claims: [RateClaim], on connection: PostgresConnection, logger: Logger) async throws -> [String: (base: Double, taken: Int)] {
        var result: [String: (base: Double, taken: Int)] = [:]
        for try await (key, base, taken) in try await connection.execute(RateClaimStatement(claims: claims), logger: logger) {
            result[key] = (base, Int(taken))
        }
        return result
    }

    struct RateClaimStatement: PostgresPreparedStatement {
        static let name = "mercato_rate_claim"
        /// `set_config(…, true)` holds to the end of the statement's transaction, whose commit
        /// then does not wait for its WAL flush (the `SET LOCAL` of a transaction, in the
        /// statement itself); joined to `claim`, it is evaluated with it.
        static let sql = """
            WITH claim AS (
                SELECT t.* FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[]) AS t(k, n, i, w, c),
                    (SELECT set_config('synchronous_commit', 'off', true)) AS lazy(setting)
            ), current AS (
                SELECT s.install_id, GREATEST(s.tat, claim.c) AS base, claim.n, claim.i, claim.w, claim.c
                FROM install_rate_state s JOIN claim ON claim.k = s.install_id
                ORDER BY s.install_id FOR UPDATE OF s
            ), decided AS (
                SELECT install_id, base, i, LEAST(n, GREATEST(0, floor((w - (base - c)) / i + 0.000001)))::BIGINT AS taken FROM current
            )
            UPDATE install_rate_state s SET tat = decided.base + decided.taken * decided.i FROM decided
            WHERE s.install_id = decided.install_id
            RETURNING s.install_id, decided.base, decided.taken
            """
        typealias Row = (String, Double, Int64)
        var claims: [RateClaim]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(claims.map(\.key))
            bindings.append(claims.map { Int64($0.count) })
            bindings.append(claims.map(\.interval))
            bindings.append(claims.map(\.window))
            bindings.append(claims.map(\.now))
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}
