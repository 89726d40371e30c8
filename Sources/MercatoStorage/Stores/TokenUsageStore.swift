import PostgresNIO
public import SQLKit

/// One request of an API token, as its usage log keeps it.
public struct TokenUsageRecord: Sendable, Codable, Equatable {
    public var id: String
    public var tokenId: String
    public var at: Int64
    public var method: String
    /// The route template, or the path without its query when no route matched.
    public var path: String
    public var status: Int
    public var requestId: String

    public init(id: String, tokenId: String, at: Int64, method: String, path: String, status: Int, requestId: String) {
        self.id = id
        self.tokenId = tokenId
        self.at = at
        self.method = method
        self.path = path
        self.status = status
        self.requestId = requestId
    }
}

/// Rows of `token_hourly_counts` (each token's requests in each clock hour, shared by the nodes)
/// and `token_usage` (each token's recent requests).
public enum TokenUsageStore {
    /// One request counted against its token's window (hours since 1970).
    public struct Hit: Sendable {
        public var tokenID: String
        public var window: Int64

        public init(tokenID: String, window: Int64) {
            self.tokenID = tokenID
            self.window = window
        }
    }

    /// Adds a batch's hits to the counters; answers each hit's place in its token's window
    /// (1 for the first request of the hour), in the batch's order. One statement per token and
    /// window, taken in key order so that two nodes' batches never wait on each other in a cycle.
    public static func count(_ hits: [Hit], on db: any SQLDatabase) async throws -> [Int] {
        var groups: [String: (hit: Hit, indexes: [Int])] = [:]
        for (index, hit) in hits.enumerated() {
            groups["\(hit.tokenID) \(hit.window)", default: (hit, [])].indexes.append(index)
        }
        var places = [Int](repeating: 0, count: hits.count)
        for key in groups.keys.sorted() {
            let (hit, indexes) = groups[key]!
            let row = try await db.prepared(CountHits.self, [hit.tokenID, hit.window, indexes.count]).first
            let total = try row?.decode(column: "hits", as: Int.self) ?? indexes.count
            for (n, index) in indexes.enumerated() { places[index] = total - indexes.count + n + 1 }
        }
        return places
    }

    /// Adds a token's hits in one window; answers its count after them.
    enum CountHits: PreparedText {
        static let text = """
            INSERT INTO token_hourly_counts (token_id, window_hour, hits) VALUES (?, ?, ?)
            ON CONFLICT (token_id, window_hour) DO UPDATE SET hits = token_hourly_counts.hits + excluded.hits
            RETURNING hits
            """
        static let name = "mercato_count_token_hits"
        static let postgres = numbered(text)
    }

    /// Whether `hits` are all one token's in one window: one statement, which on PostgreSQL
    /// commits by itself without a transaction around it (``GroupCommit``'s `alone`).
    public static func oneCounter(_ hits: [Hit]) -> Bool {
        guard let first = hits.first else { return true }
        return hits.allSatisfy { $0.tokenID == first.tokenID && $0.window == first.window }
    }

    /// Removes the counters of windows before `window`.
    @discardableResult
    public static func expireCounts(before window: Int64, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("DELETE FROM token_hourly_counts WHERE window_hour < \(bind: window) RETURNING token_id").all().count
    }

    /// Writes a batch of usage rows and moves each token's `last_used_at` forward (tokens in
    /// key order, as ``count(_:on:)``). On PostgreSQL both are named prepared statements, the
    /// rows as arrays: one text whatever the batch's size, never planned again.
    public static func record(_ rows: [TokenUsageRecord], on db: any SQLDatabase) async throws {
        guard !rows.isEmpty else { return }
        if let pg = db as? PostgresConnectionSQL {
            for try await _ in try await pg.connection.execute(InsertUsage(rows: rows), logger: pg.logger) {}
        } else {
            try await MultiRowInsert.run(into: "token_usage", columns: "id, token_id, at, method, path, status, request_id",
                                         rows: rows.map { [$0.id, $0.tokenId, $0.at, $0.method, $0.path, $0.status, $0.requestId] }, on: db)
        }
        var latest: [String: Int64] = [:]
        for row in rows { latest[row.tokenId] = max(latest[row.tokenId] ?? 0, row.at) }
        for token in latest.keys.sorted() {
            let at = latest[token]!
            _ = try await db.prepared(TouchToken.self, [at, token, at])
        }
    }

    /// A batch of usage rows on PostgreSQL, one array a column.
    struct InsertUsage: PostgresPreparedStatement {
        static let name = "mercato_insert_token_usage"
        static let sql = """
            INSERT INTO token_usage (id, token_id, at, method, path, status, request_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::text[])
            """
        typealias Row = PostgresRow
        let rows: [TokenUsageRecord]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 7)
            bindings.append(rows.map(\.id))
            bindings.append(rows.map(\.tokenId))
            bindings.append(rows.map(\.at))
            bindings.append(rows.map(\.method))
            bindings.append(rows.map(\.path))
            bindings.append(rows.map { Int32(clamping: $0.status) })
            bindings.append(rows.map(\.requestId))
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
    }

    /// A token's `last_used_at` moved forward to a batch's latest request (never back).
    enum TouchToken: PreparedText {
        static let text = "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)"
        static let name = "mercato_touch_token"
        static let postgres = numbered(text)
    }

    /// A token's usage, newest first; `before` is the id of the last row of the previous page.
    public static func usage(token: String, before cursor: String?, limit: Int, on db: any SQLDatabase) async throws -> [TokenUsageRecord] {
        try await db.raw("""
            SELECT id, token_id, at, method, path, status, request_id FROM token_usage
            WHERE token_id = \(bind: token) AND id < \(bind: cursor ?? "~")
            ORDER BY id DESC LIMIT \(bind: limit)
            """).all(decoding: TokenUsageRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Removes usage rows older than `millis`, at most `limit` of them.
    public static func prune(before millis: Int64, limit: Int, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("""
            DELETE FROM token_usage WHERE id IN (SELECT id FROM token_usage WHERE at < \(bind: millis) LIMIT \(bind: limit)) RETURNING id
            """).all().count
    }
}
