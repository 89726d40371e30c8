public import Logging
public import PostgresNIO
public import SQLKit

/// One authenticated command request, as logged (CONTRACT §4). Never the body, only its hash.
public struct CommandLogRecord: Sendable, Codable, Equatable {
    public var id: String
    public var installId: String
    public var appId: String
    public var orgId: String
    public var command: String
    public var webhookId: String
    public var bodySha256: String
    /// `succeeded` or the error code.
    public var outcome: String
    public var httpStatus: Int
    public var durationUs: Int64
    public var createdAt: Int64

    public init(id: String, installId: String, appId: String, orgId: String, command: String, webhookId: String, bodySha256: String,
                outcome: String, httpStatus: Int, durationUs: Int64, createdAt: Int64) {
        self.id = id
        self.installId = installId
        self.appId = appId
        self.orgId = orgId
        self.command = command
        self.webhookId = webhookId
        self.bodySha256 = bodySha256
        self.outcome = outcome
        self.httpStatus = httpStatus
        self.durationUs = durationUs
        self.createdAt = createdAt
    }
}

/// The stored answer of an idempotency key, or (status ``unanswered``) only the body the key
/// was first used with.
public struct IdempotencyRecord: Sendable, Codable, Equatable {
    /// `httpStatus` of a key whose first use was refused before the handler: no answer kept.
    public static let unanswered = 0

    public var appId: String
    public var webhookId: String
    public var bodySha256: String
    public var httpStatus: Int
    /// The answer's JSON body.
    public var response: String
    public var createdAt: Int64

    public init(appId: String, webhookId: String, bodySha256: String, httpStatus: Int, response: String, createdAt: Int64) {
        self.appId = appId
        self.webhookId = webhookId
        self.bodySha256 = bodySha256
        self.httpStatus = httpStatus
        self.response = response
        self.createdAt = createdAt
    }
}

/// Filters of a command log listing.
public struct CommandLogFilter: Sendable {
    public var command: String?
    public var outcome: String?
    public var since: Int64?
    public var until: Int64?
    /// One install's rows within an app's log.
    public var installId: String?
    public init(command: String? = nil, outcome: String? = nil, since: Int64? = nil, until: Int64? = nil, installId: String? = nil) {
        self.installId = installId
        self.command = command
        self.outcome = outcome
        self.since = since
        self.until = until
    }
}

/// What the gateway reads on every command in one statement: the install's mutable fields and
/// its app's latest version and newest secret id (to validate a cached target), the rate-limit
/// override, and the stored answer of (app, webhook-id) if any.
public struct CommandCheck: Sendable, Equatable {
    /// The parts of the install, app and secrets a cached target depends on.
    public struct Stamp: Sendable, Equatable {
        public var status: String
        public var version: String
        public var scopes: String
        public var updatedAt: Int64
        public var removedAt: Int64?
        public var appLatestVersion: String
        /// `{number of the app's secrets}:{greatest secret id}`: a rotation always adds a secret
        /// (ids made in the same millisecond need not sort by creation, the count grows anyway).
        public var newestSecretID: String?
        public init(status: String, version: String, scopes: String, updatedAt: Int64, removedAt: Int64?, appLatestVersion: String, newestSecretID: String?) {
            self.status = status
            self.version = version
            self.scopes = scopes
            self.updatedAt = updatedAt
            self.removedAt = removedAt
            self.appLatestVersion = appLatestVersion
            self.newestSecretID = newestSecretID
        }

        init(_ row: CommandStore.StampStatement.Row) {
            let (status, version, scopes, updatedAt, removedAt, latest, newestSecret) = row
            self.init(status: status, version: version, scopes: scopes, updatedAt: updatedAt, removedAt: removedAt,
                      appLatestVersion: latest, newestSecretID: newestSecret)
        }
    }
    public var stamp: Stamp
    public var ratePerSecond: Double?
    public var rateBurst: Int?
    public var idempotency: IdempotencyRecord?

    init(_ row: CommandStore.CheckRow, webhookID: String) throws {
        let (appID, status, version, scopes, updatedAt, removedAt, latest, newestSecret, perSecond, burst, hash, httpStatus, response, storedAt) = row
        stamp = Stamp(status: status, version: version, scopes: scopes, updatedAt: updatedAt, removedAt: removedAt,
                      appLatestVersion: latest, newestSecretID: newestSecret)
        ratePerSecond = perSecond
        rateBurst = burst
        if let hash {
            guard let httpStatus, let response, let storedAt else { throw StorageError("a stored command answer lacks its status, body or time") }
            idempotency = IdempotencyRecord(appId: appID, webhookId: webhookID, bodySha256: hash, httpStatus: httpStatus, response: response, createdAt: storedAt)
        }
    }
}

/// Rows of `command_log`, `command_idempotency` and `install_rate_limits`.
public enum CommandStore {
    static let logColumns = "id, install_id, app_id, org_id, command, webhook_id, body_sha256, outcome, http_status, duration_us, created_at"

    public static func insert(_ r: CommandLogRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO command_log (\(unsafeRaw: logColumns)) VALUES (\(bind: r.id), \(bind: r.installId), \(bind: r.appId), \(bind: r.orgId),
                \(bind: r.command), \(bind: r.webhookId), \(bind: r.bodySha256), \(bind: r.outcome), \(bind: r.httpStatus), \(bind: r.durationUs), \(bind: r.createdAt))
            """).run()
    }

    /// Inserts `records` with multi-row statements.
    public static func insert(_ records: [CommandLogRecord], on db: any SQLDatabase) async throws {
        try await MultiRowInsert.run(into: "command_log", columns: logColumns, rows: records.map { r in
            [r.id, r.installId, r.appId, r.orgId, r.command, r.webhookId, r.bodySha256, r.outcome, r.httpStatus, r.durationUs, r.createdAt]
        }, on: db)
    }

    /// A command batch's log rows and the answers kept for idempotency: on SQLite the two
    /// multi-row INSERTs in the caller's transaction. On PostgreSQL the group commit runs
    /// ``insertAnswered(_:_:on:logger:)``: one prepared statement, which commits or fails whole
    /// without a transaction around it (``insertAnswered(_:_:in:)`` picks for the engine).
    public static func insertAnswered(_ logs: [CommandLogRecord], _ answers: [IdempotencyRecord], on db: any SQLDatabase) async throws {
        if !logs.isEmpty { try await insert(logs, on: db) }
        if !answers.isEmpty { try await insertIdempotency(answers, on: db) }
    }

    /// ``insertAnswered(_:_:on:)`` as the group commit runs it on either engine.
    public static func insertAnswered(_ logs: [CommandLogRecord], _ answers: [IdempotencyRecord], in database: Database) async throws {
        if try await database.withPostgres(writes: true, { try await insertAnswered(logs, answers, on: $0, logger: database.logger) }) != nil { return }
        try await database.transaction { try await insertAnswered(logs, answers, on: $0) }
    }

    /// What a key's stored row becomes when another batch brings it again: an answer replaces
    /// an unanswered row (same body: another body is refused before it gets here); an answer
    /// already kept stays (another node won). A reservation's row keeps its `created_at`, the
    /// moment its key was taken (a retry may take it again later, which moves it; see
    /// ``reservationConflict``), so the answer's window runs from then, at most a lease earlier:
    /// no indexed column changes and PostgreSQL updates the row in place (a HOT update) instead
    /// of adding index entries for it. A refusal's row (no reservation) takes the answer's time,
    /// so an answer stored long after a refusal is still kept its whole window.
    static let keepFirstAnswer = """
        ON CONFLICT (app_id, webhook_id) DO UPDATE SET http_status = excluded.http_status, response = excluded.response,
            created_at = CASE WHEN command_idempotency.reserved_until IS NULL THEN excluded.created_at ELSE command_idempotency.created_at END,
            reserved_until = NULL WHERE command_idempotency.http_status = 0
        """

    /// A node's claim on an idempotency key while it runs the key's handler (several nodes on
    /// PostgreSQL): the row is the key's unanswered row, with `reserved_until` set.
    public struct Reservation: Sendable {
        public var appId: String
        public var webhookId: String
        public var bodySha256: String
        public var until: Int64
        public var now: Int64
        public init(appId: String, webhookId: String, bodySha256: String, until: Int64, now: Int64) {
            self.appId = appId
            self.webhookId = webhookId
            self.bodySha256 = bodySha256
            self.until = until
            self.now = now
        }
    }

    /// What a reservation got.
    public enum Claim: Sendable, Equatable {
        /// Not taken: the key is answered, bound to another body, or held by a live reservation.
        case refused
        /// Taken: `newRow` when the reservation made the key's row; otherwise it took over an
        /// unanswered row (a refusal's, or one whose lease ran out). ``release(_:newRow:in:)``
        /// needs to know which.
        case taken(newRow: Bool)
    }

    /// Gives back a key its holder will not answer (a refusal that keeps nothing of the key),
    /// so that a retry is not told the key is in progress until the lease runs out: the row the
    /// reservation made goes, a row it took over only loses the reservation. Only while the
    /// reservation is still this one (a lease that ran out may have been taken since).
    public static func release(_ reservation: Reservation, newRow: Bool, in database: Database) async throws {
        try await database.transaction { db in
            let r = reservation
            if newRow {
                try await db.raw("""
                    DELETE FROM command_idempotency WHERE app_id = \(bind: r.appId) AND webhook_id = \(bind: r.webhookId)
                        AND http_status = 0 AND reserved_until = \(bind: r.until)
                    """).run()
            } else {
                try await db.raw("""
                    UPDATE command_idempotency SET reserved_until = NULL WHERE app_id = \(bind: r.appId) AND webhook_id = \(bind: r.webhookId)
                        AND http_status = 0 AND reserved_until = \(bind: r.until)
                    """).run()
            }
        }
    }

    /// Stores answers with multi-row statements; a key that already has an answer keeps it.
    public static func insertIdempotency(_ records: [IdempotencyRecord], on db: any SQLDatabase) async throws {
        try await MultiRowInsert.run(into: "command_idempotency", columns: "app_id, webhook_id, body_sha256, http_status, response, created_at",
                                     rows: records.map { r in [r.appId, r.webhookId, r.bodySha256, r.httpStatus, r.response, r.createdAt] },
                                     suffix: keepFirstAnswer, on: db)
    }

    /// Stores an answer unless the key already has one (another node won); answers whether it stored.
    @discardableResult
    public static func insertIdempotency(_ r: IdempotencyRecord, on db: any SQLDatabase) async throws -> Bool {
        let rows = try await db.raw("""
            INSERT INTO command_idempotency (app_id, webhook_id, body_sha256, http_status, response, created_at)
            VALUES (\(bind: r.appId), \(bind: r.webhookId), \(bind: r.bodySha256), \(bind: r.httpStatus), \(bind: r.response), \(bind: r.createdAt))
            ON CONFLICT (app_id, webhook_id) DO NOTHING RETURNING app_id
            """).all()
        return !rows.isEmpty
    }

    /// The columns of a ``CommandCheck/Stamp``, in its initializer's order: read alone by
    /// ``stamp(install:on:)`` and within ``check(install:webhookID:on:)``.
    private static let stampColumns = """
        i.status, i.version, i.scopes, i.updated_at, i.removed_at, a.latest_version,
               (SELECT COUNT(*) || ':' || COALESCE(MAX(s.id), '') FROM app_secrets s WHERE s.app_id = i.app_id) AS newest_secret
        """

    /// The stamp of `install` (see ``CommandCheck``), its rate override and the stored answer of
    /// (the install's app, `webhookID`): one indexed statement; nil when the install does not exist.
    /// The columns ``check(install:webhookID:on:)`` reads, in its select list's order.
    static let checkColumns = """
        i.app_id, \(stampColumns),
               r.per_second, r.burst,
               c.body_sha256, c.http_status, c.response, c.created_at AS stored_at
        """
    private static let checkSelect = """
        SELECT \(checkColumns)
        FROM installs i
        JOIN apps a ON a.id = i.app_id
        LEFT JOIN install_rate_limits r ON r.install_id = i.id
        """

    private static let checkStatement = """
        \(checkSelect)
        LEFT JOIN command_idempotency c ON c.app_id = i.app_id AND c.webhook_id = ?
        WHERE i.id = ?
        """

    public static func check(install: String, webhookID: String, on db: any SQLDatabase) async throws -> CommandCheck? {
        guard let row = try await db.bound(checkStatement, [webhookID, install]).first() else { return nil }
        return try CommandCheck(
            CheckRow(try row.decode(column: "app_id", as: String.self), try row.decode(column: "status", as: String.self),
                     try row.decode(column: "version", as: String.self), try row.decode(column: "scopes", as: String.self),
                     try row.decode(column: "updated_at", as: Int64.self), try row.decode(column: "removed_at", as: Int64?.self),
                     try row.decode(column: "latest_version", as: String.self), try row.decode(column: "newest_secret", as: String?.self),
                     try row.decode(column: "per_second", as: Double?.self), try row.decode(column: "burst", as: Int?.self),
                     try row.decode(column: "body_sha256", as: String?.self), try row.decode(column: "http_status", as: Int?.self),
                     try row.decode(column: "response", as: String?.self), try row.decode(column: "stored_at", as: Int64?.self)),
            webhookID: webhookID)
    }

    /// The same check on either engine: on PostgreSQL the prepared statement of
    /// ``checks(_:on:logger:)`` for one key; on SQLite the statement above on a reader.
    public static func check(install: String, webhookID: String, in database: Database) async throws -> CommandCheck? {
        let key = CheckKey(install: install, webhookID: webhookID)
        if let found = try await database.withPostgres({ try await checks([key], on: $0, logger: database.logger) }) {
            return found[0]
        }
        return try await database.read { try await check(install: install, webhookID: webhookID, on: $0) }
    }

    /// A check's columns, in ``checkColumns``' order.
    typealias CheckRow = (String, String, String, String, Int64, Int64?, String, String?, Double?, Int?, String?, Int?, String?, Int64?)

    /// A key of a command check: the install the command names and its webhook-id.
    public struct CheckKey: Sendable, Hashable {
        public var install: String
        public var webhookID: String
        public init(install: String, webhookID: String) {
            self.install = install
            self.webhookID = webhookID
        }
    }

    /// The checks of several commands, in `keys`' order (nil: no such install): on PostgreSQL
    /// ``checks(_:on:logger:)`` (the gateway's batch); on SQLite each on a reader.
    public static func checks(_ keys: [CheckKey], in database: Database) async throws -> [CommandCheck?] {
        if let found = try await database.withPostgres({ try await checks(keys, on: $0, logger: database.logger) }) {
            return found
        }
        var found: [CommandCheck?] = []
        for key in keys { found.append(try await database.read { try await check(install: key.install, webhookID: key.webhookID, on: $0) }) }
        return found
    }

    /// How many keys one execution of the batched check on PostgreSQL takes.
    public static var checkSlots: Int { ChecksStatement.slots }

    /// The checks of `keys` on a PostgreSQL connection: ``checkSlots`` keys an execution of one
    /// named prepared statement.
    public static func checks(_ keys: [CheckKey], on connection: PostgresConnection, logger: Logger) async throws -> [CommandCheck?] {
        var found = [CommandCheck?](repeating: nil, count: keys.count)
        var offset = 0
        while offset < keys.count {
            let part = keys[offset..<min(keys.count, offset + ChecksStatement.slots)]
            // Read to the end (a row per key at most), so the connection goes back clean.
            for try await row in try await connection.execute(ChecksStatement(keys: Array(part)), logger: logger) {
                let (slot, appID, status, version, scopes, updatedAt, removedAt, latest, newestSecret, perSecond, burst, hash, httpStatus, response, storedAt) = row
                let index = offset + Int(slot)
                guard part.indices.contains(index) else { throw StorageError("a batched command check answered an unknown slot \(slot)") }
                found[index] = try CommandCheck((appID, status, version, scopes, updatedAt, removedAt, latest, newestSecret, perSecond, burst,
                                                 hash, httpStatus, response, storedAt), webhookID: keys[index].webhookID)
            }
            offset += part.count
        }
        return found
    }

    /// Up to ``slots`` checks in one statement of scalar parameters (unused slots NULL, which
    /// match no install). A fixed number of rows lets PostgreSQL plan it once: the generic plan
    /// sees the same row count as a custom one, so after its first executions the connection
    /// keeps the generic plan, where arrays of keys had it planned again at every execution.
    /// The stored answer is a lateral lookup by its whole key: joined plainly, a plan made
    /// while `command_idempotency` was nearly empty looked keys up by app alone, then
    /// filtered every row of the app (13 ms a call once the table had grown; a cached
    /// generic plan keeps such a choice until the table is analyzed again).
    struct ChecksStatement: PostgresPreparedStatement {
        static let name = "mercato_command_checks"
        static let slots = 8
        static let sql = select(slots: slots, firstParameter: 1)

        /// The check of `slots` keys, their parameters numbered from `firstParameter`.
        static func select(slots: Int, firstParameter: Int) -> String {
            """
            SELECT k.n, \(checkColumns)
            FROM (VALUES \((0..<slots).map { "($\(2 * $0 + firstParameter)::text, $\(2 * $0 + firstParameter + 1)::text, \($0))" }.joined(separator: ", "))) AS k(install, webhook, n)
            JOIN installs i ON i.id = k.install
            JOIN apps a ON a.id = i.app_id
            LEFT JOIN install_rate_limits r ON r.install_id = i.id
            LEFT JOIN LATERAL (
                SELECT body_sha256, http_status, response, created_at FROM command_idempotency
                WHERE app_id = i.app_id AND webhook_id = k.webhook LIMIT 1
            ) c ON true
            """
        }
        typealias Row = (Int32, String, String, String, String, Int64, Int64?, String, String?, Double?, Int?, String?, Int?, String?, Int64?)
        var keys: [CheckKey]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2 * Self.slots)
            Self.bind(keys, into: &bindings)
            return bindings
        }

        /// The keys' `slots` pairs of parameters (unused ones NULL), in the statement's order.
        static func bind(_ keys: [CheckKey], slots: Int = slots, into bindings: inout PostgresBindings) {
            precondition(keys.count <= slots, "at most \(slots) checks an execution")
            for slot in 0..<slots {
                if slot < keys.count {
                    bindings.append(keys[slot].install)
                    bindings.append(keys[slot].webhookID)
                } else {
                    bindings.appendNull()
                    bindings.appendNull()
                }
            }
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }

    /// The stamp of `install` alone, for comparing with a cached target's when no key is looked
    /// up (loading a target, or a signature that failed on a cached one): one indexed statement;
    /// nil when the install does not exist.
    public static func stamp(install: String, on db: any SQLDatabase) async throws -> CommandCheck.Stamp? {
        guard let row = try await db.raw("""
            SELECT \(unsafeRaw: stampColumns)
            FROM installs i JOIN apps a ON a.id = i.app_id
            WHERE i.id = \(bind: install)
            """).first() else { return nil }
        return CommandCheck.Stamp(
            StampStatement.Row(try row.decode(column: "status", as: String.self), try row.decode(column: "version", as: String.self),
                     try row.decode(column: "scopes", as: String.self), try row.decode(column: "updated_at", as: Int64.self),
                     try row.decode(column: "removed_at", as: Int64?.self), try row.decode(column: "latest_version", as: String.self),
                     try row.decode(column: "newest_secret", as: String?.self)))
    }

    /// The same stamp on the command path: on PostgreSQL a named prepared statement (as
    /// ``check(install:webhookID:in:)``); on SQLite the statement above on a reader.
    public static func stamp(install: String, in database: Database) async throws -> CommandCheck.Stamp? {
        if let found = try await database.withPostgres({ connection -> CommandCheck.Stamp? in
            var found: CommandCheck.Stamp?
            // Read to the end (at most one row: `i.id` is the key), so the connection goes back clean.
            for try await row in try await connection.execute(StampStatement(install: install), logger: database.logger) {
                found = CommandCheck.Stamp(row)
            }
            return found
        }) {
            return found
        }
        return try await database.read { try await stamp(install: install, on: $0) }
    }

    struct StampStatement: PostgresPreparedStatement {
        static let name = "mercato_install_stamp"
        static let sql = "SELECT " + stampColumns + """

            FROM installs i JOIN apps a ON a.id = i.app_id
            WHERE i.id = $1
            """
        typealias Row = (String, String, String, Int64, Int64?, String, String?)
        var install: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(install)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }

    public static func idempotency(app: String, webhookID: String, on db: any SQLDatabase) async throws -> IdempotencyRecord? {
        try await db.raw("""
            SELECT app_id, webhook_id, body_sha256, http_status, response, created_at FROM command_idempotency
            WHERE app_id = \(bind: app) AND webhook_id = \(bind: webhookID)
            """).first(decoding: IdempotencyRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Deletes records older than `millis`; answers how many.
    public static func expireIdempotency(before millis: Int64, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("DELETE FROM command_idempotency WHERE created_at < \(bind: millis) RETURNING app_id").all().count
    }

    /// Deletes log rows older than `millis`, at most `limit` at a time; answers how many.
    public static func expireLog(before millis: Int64, limit: Int, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("""
            DELETE FROM command_log WHERE id IN (SELECT id FROM command_log WHERE created_at < \(bind: millis) ORDER BY id LIMIT \(bind: limit))
            RETURNING id
            """).all().count
    }

    /// Newest first; `column` is `install_id` or `app_id`.
    public static func log(where column: String, equals value: String, filter: CommandLogFilter, beforeID: String?, limit: Int,
                           on db: any SQLDatabase) async throws -> [CommandLogRecord] {
        precondition(column == "install_id" || column == "app_id")
        var q = SQLQueryString("SELECT \(unsafeRaw: logColumns) FROM command_log WHERE \(unsafeRaw: column) = \(bind: value)")
        if let beforeID { q.appendInterpolation(unsafeRaw: " AND id < "); q.appendInterpolation(bind: beforeID) }
        if let c = filter.command { q.appendInterpolation(unsafeRaw: " AND command = "); q.appendInterpolation(bind: c) }
        if let o = filter.outcome { q.appendInterpolation(unsafeRaw: " AND outcome = "); q.appendInterpolation(bind: o) }
        if let i = filter.installId { q.appendInterpolation(unsafeRaw: " AND install_id = "); q.appendInterpolation(bind: i) }
        if let s = filter.since { q.appendInterpolation(unsafeRaw: " AND created_at >= "); q.appendInterpolation(bind: s) }
        if let u = filter.until { q.appendInterpolation(unsafeRaw: " AND created_at < "); q.appendInterpolation(bind: u) }
        q.appendInterpolation(unsafeRaw: " ORDER BY id DESC LIMIT ")
        q.appendInterpolation(bind: limit)
        return try await db.raw(q).all(decoding: CommandLogRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Requests of one key in a batch, for the command rate shared across nodes (GCRA with the
    /// sequence's arithmetic done here: `count` arrivals at `now`, one per `interval`, within `window`).
    public struct RateClaim: Sendable {
        public var key: String
        public var count: Int
        public var interval: Double
        public var window: Double
        public var now: Double
        public init(key: String, count: Int, interval: Double, window: Double, now: Double) {
            self.key = key
            self.count = count
            self.interval = interval
            self.window = window
            self.now = now
        }
    }

    /// Forgets rate state that owes nothing at `now` (seconds); answers how many rows went.
    public static func expireRateState(before now: Double, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("DELETE FROM install_rate_state WHERE tat < \(bind: now) RETURNING install_id").all().count
    }

    public static func setRateLimit(install: String, perSecond: Double, burst: Int, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO install_rate_limits (install_id, per_second, burst, updated_at) VALUES (\(bind: install), \(bind: perSecond), \(bind: burst), \(bind: millis))
            ON CONFLICT (install_id) DO UPDATE SET per_second = excluded.per_second, burst = excluded.burst, updated_at = excluded.updated_at
            """).run()
        // The shared state carries at most one burst of the new limit's debt, so a raised limit
        // counts at once rather than after the old one's debt is paid (as the local limiter does).
        let limit = Double(millis) / 1000 + Double(max(burst, 1)) / max(perSecond, 0.000_001)
        try await db.raw("UPDATE install_rate_state SET tat = CASE WHEN tat > \(bind: limit) THEN \(bind: limit) ELSE tat END WHERE install_id = \(bind: install)").run()
    }

    public static func rateLimit(install: String, on db: any SQLDatabase) async throws -> (perSecond: Double, burst: Int)? {
        guard let row = try await db.raw("SELECT per_second, burst FROM install_rate_limits WHERE install_id = \(bind: install)").first() else { return nil }
        return (try row.decode(column: "per_second", as: Double.self), try row.decode(column: "burst", as: Int.self))
    }
}
