public import MercatoStorage

/// An allowance per key (GCRA) that holds across nodes: in this process on SQLite, where one
/// process serves; on PostgreSQL shared by every node through `install_rate_state`
/// (``SharedRateLimiter``, one batched statement per group commit), so N nodes give a key its
/// limit, not N times it (CONTRACT §12). Keys carry a prefix naming their use (e.g.
/// `inbound:<install id>`) so they never meet an install's command rate.
public final class RateAllowance: Sendable {
    private let local = RateLimiter()
    private let shared: SharedRateLimiter?

    public init(database: Database) {
        shared = database.engine == .postgres ? SharedRateLimiter(database: database) : nil
    }

    /// Takes one request from `key`'s allowance at `now` (seconds), or refuses; throws when
    /// storage could not decide (several nodes).
    public func take(_ key: String, limit: RateLimiter.Limit, now: Double) async throws -> RateLimiter.Decision {
        if let shared { return try await shared.take(key, limit: limit, now: now) }
        return local.take(key, limit: limit, now: now)
    }
}
