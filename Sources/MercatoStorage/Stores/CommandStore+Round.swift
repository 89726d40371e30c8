public import Logging
public import PostgresNIO

/// The command path's round trip on PostgreSQL: what the gateway's waiting commands need of the
/// database at one moment, whatever stage each is at, in one named prepared statement. A command
/// meets PostgreSQL three times (its check, its key's reservation, its record); sent as three
/// statements, a node with few commands in flight (one of several nodes behind a balancer) paid
/// a round trip for each stage of each command, where together they share one.
extension CommandStore {
    /// One round's work, each list possibly empty: `checks` answered in order (nil: no such
    /// install), `reservations` answered in order (``Claim``: a key is taken when it is new, or
    /// unanswered with the same body and no live reservation; an answered key, another body, or
    /// a reservation another node still holds is not), the checks reading what was committed
    /// before the round (a key's check beside its reservation sees the key as it was before it),
    /// `logs` and `answers` stored (as ``insertAnswered(_:_:on:logger:)``).
    public struct Round: Sendable {
        public var checks: [CheckKey] = []
        public var reservations: [Reservation] = []
        public var logs: [CommandLogRecord] = []
        public var answers: [IdempotencyRecord] = []
        public init() {}
    }

    /// Runs `round` in one statement (a single statement commits or fails whole: a round's
    /// writes are durable when it returns, its checks read what was committed before it). Checks
    /// past ``RoundStatement/checkSlots`` take further executions of the check statement.
    ///
    /// A round must not write one key's row twice (answer and reserve it, or answer it twice):
    /// PostgreSQL refuses to change a row twice in one statement. The gateway writes a key's row
    /// only while it holds the key in process, one step after the other, so one node's round
    /// never writes a key twice (another request's check of the key, a read, may share the
    /// round); a second reservation of a key in `round` is answered not taken without being sent.
    public static func run(_ round: Round, on connection: PostgresConnection, logger: Logger) async throws -> (checks: [CommandCheck?], taken: [Claim]) {
        var seen = Set<String>()
        let firsts = round.reservations.map { seen.insert($0.appId + "\u{0}" + $0.webhookId).inserted }
        let sent = zip(round.reservations, firsts).filter(\.1).map(\.0)
        let inline = Array(round.checks.prefix(RoundStatement.checkSlots))
        var found = [CommandCheck?](repeating: nil, count: round.checks.count)
        var taken = [String: Bool]()
        // Read to the end, so the connection goes back clean.
        for try await row in try await connection.execute(RoundStatement(checks: inline, reservations: sent, logs: round.logs, answers: round.answers), logger: logger) {
            let (slot, appID, status, version, scopes, updatedAt, removedAt, latest, newestSecret, perSecond, burst, hash, httpStatus, response, storedAt) = row
            if slot < 0 {
                // A reservation taken (-1: its row is new, -2: it took a row over): its key's
                // webhook-id rides in the status column.
                guard let webhook = status else { throw StorageError("a command round answered a reservation without its webhook-id") }
                taken[appID + "\u{0}" + webhook] = slot == -1
                continue
            }
            let index = Int(slot)
            guard inline.indices.contains(index), let status, let version, let scopes, let updatedAt, let latest else {
                throw StorageError("a command round answered an unknown or incomplete check \(slot)")
            }
            found[index] = try CommandCheck((appID, status, version, scopes, updatedAt, removedAt, latest, newestSecret, perSecond, burst,
                                             hash, httpStatus, response, storedAt), webhookID: inline[index].webhookID)
        }
        if round.checks.count > inline.count {
            let rest = try await checks(Array(round.checks.dropFirst(inline.count)), on: connection, logger: logger)
            found.replaceSubrange(inline.count..., with: rest)
        }
        let answered = zip(round.reservations, firsts).map { claim, first -> Claim in
            guard first, let newRow = taken[claim.appId + "\u{0}" + claim.webhookId] else { return .refused }
            return .taken(newRow: newRow)
        }
        return (found, answered)
    }

    /// The log rows and kept answers (``AnsweredStatement``), the reservations
    /// (``reservationConflict``) and up to ``checkSlots`` checks (``ChecksStatement``),
    /// as one statement: the checks' rows, then a row per reservation taken (slot -1 for a new
    /// row, -2 for a row taken over; its app id, its webhook-id where a check has its status).
    struct RoundStatement: PostgresPreparedStatement {
        static let name = "mercato_command_round"
        static let sql = """
            WITH logged AS (
                INSERT INTO command_log (\(logColumns))
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                                     $9::bigint[], $10::bigint[], $11::bigint[])
            ), answered AS (
                INSERT INTO command_idempotency (app_id, webhook_id, body_sha256, http_status, response, created_at)
                SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::bigint[], $16::text[], $17::bigint[])
                \(keepFirstAnswer)
            ), reserved AS (
                INSERT INTO command_idempotency (app_id, webhook_id, body_sha256, http_status, response, created_at, reserved_until)
                SELECT a, w, b, 0, '', c, u FROM unnest($18::text[], $19::text[], $20::text[], $21::bigint[], $22::bigint[]) AS t(a, w, b, c, u)
                \(reservationConflict)
                RETURNING app_id, webhook_id, xmax = 0 AS new_row
            )
            \(ChecksStatement.select(slots: checkSlots, firstParameter: 23))
            UNION ALL
            SELECT CASE WHEN new_row THEN -1 ELSE -2 END, app_id, webhook_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM reserved
            """
        typealias Row = (Int32, String, String?, String?, String?, Int64?, Int64?, String?, String?, Double?, Int?, String?, Int?, String?, Int64?)
        /// Checks in one round's statement: twice a check statement's, as a round carries the
        /// checks that gathered while the previous one was applied.
        static let checkSlots = 2 * ChecksStatement.slots
        var checks: [CheckKey]
        var reservations: [Reservation]
        var logs: [CommandLogRecord]
        var answers: [IdempotencyRecord]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 22 + 2 * Self.checkSlots)
            AnsweredStatement.bind(logs: logs, answers: answers, into: &bindings)
            ReservationArrays.bind(reservations, into: &bindings)
            ChecksStatement.bind(checks, slots: Self.checkSlots, into: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}
