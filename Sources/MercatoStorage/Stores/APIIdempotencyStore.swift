public import SQLKit

/// A management API request's `Idempotency-Key` as stored (`api_idempotency`): the body's
/// fingerprint, while the first request runs the lease its node renews, and once it finished its
/// answer (sealed; the store never sees it in clear).
public struct APIIdempotencyRecord: Sendable, Codable, Equatable {
    public var scope: String
    public var idemKey: String
    public var fingerprint: String
    /// `nil` while the first request runs.
    public var status: Int?
    public var answer: String?
    public var createdAt: Int64
    /// While `status` is `nil`: until when the first request's node holds the key. Past it the
    /// node stopped without keeping an answer (it died, or storage failed it).
    public var reservedUntil: Int64
}

/// Rows of `api_idempotency` (CONTRACT §9), kept 24 hours.
public enum APIIdempotencyStore {
    /// Reserves `key` for `scope` until `until`: `true` when this request is the first (a row
    /// older than `staleBefore` is taken over).
    public static func reserve(scope: String, key: String, fingerprint: String, at millis: Int64, until: Int64, staleBefore: Int64,
                               on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("""
            DELETE FROM api_idempotency WHERE scope = \(bind: scope) AND idem_key = \(bind: key) AND created_at < \(bind: staleBefore)
            """).run()
        return try await db.raw("""
            INSERT INTO api_idempotency (scope, idem_key, fingerprint, created_at, reserved_until)
            VALUES (\(bind: scope), \(bind: key), \(bind: fingerprint), \(bind: millis), \(bind: until))
            ON CONFLICT (scope, idem_key) DO NOTHING RETURNING scope
            """).first() != nil
    }

    public static func find(scope: String, key: String, on db: any SQLDatabase) async throws -> APIIdempotencyRecord? {
        try await db.raw("""
            SELECT scope, idem_key, fingerprint, status, answer, created_at, reserved_until FROM api_idempotency
            WHERE scope = \(bind: scope) AND idem_key = \(bind: key)
            """).first(decoding: APIIdempotencyRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Extends a running request's hold on its key (nothing once it has an answer).
    public static func renew(scope: String, key: String, until: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE api_idempotency SET reserved_until = \(bind: until) WHERE scope = \(bind: scope) AND idem_key = \(bind: key) AND status IS NULL
            """).run()
    }

    /// Keeps the first request's answer for replays.
    public static func finish(scope: String, key: String, status: Int, answer: String, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE api_idempotency SET status = \(bind: status), answer = \(bind: answer) WHERE scope = \(bind: scope) AND idem_key = \(bind: key)
            """).run()
    }

    /// Forgets a reservation whose request failed on the server's side (5xx): it may be sent again.
    public static func release(scope: String, key: String, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM api_idempotency WHERE scope = \(bind: scope) AND idem_key = \(bind: key) AND status IS NULL").run()
    }

    @discardableResult
    public static func expire(before millis: Int64, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("DELETE FROM api_idempotency WHERE created_at < \(bind: millis) RETURNING scope").all().count
    }
}
