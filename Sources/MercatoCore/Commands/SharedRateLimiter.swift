import Foundation
import MercatoStorage
import SQLKit

/// The command rate of each install across every node on one PostgreSQL (CONTRACT §12): the
/// same GCRA as ``RateLimiter``, with its state in `install_rate_state`. Requests gather in a
/// group commit; a batch takes each install's requests in one locked update, so N nodes give an
/// install its limit, not N times it, at one statement per batch rather than per request.
final class SharedRateLimiter: Sendable {
    struct Take: Sendable {
        var key: String
        var limit: RateLimiter.Limit
        var now: Double
    }

    private let commit: GroupCommit<Take, RateLimiter.Decision>

    init(database: Database) {
        commit = GroupCommit(database: database, maxBatch: 512) { takes, db in
            try await Self.apply(takes, at: Date().timeIntervalSince1970, on: db)
        }
    }

    /// Takes one request from `key`'s allowance at `now` (seconds), or refuses; throws when
    /// storage could not decide.
    func take(_ key: String, limit: RateLimiter.Limit, now: Double) async throws -> RateLimiter.Decision {
        try await commit.submit(Take(key: key, limit: limit, now: now))
    }

    /// One claim per key (its requests in arrival order, under the latest limit and time), then
    /// the first `taken` of each key's requests are allowed and the rest refused.
    ///
    /// Decided at `time` (when the batch runs) when that is later than the requests' own: a
    /// request that waited (for a connection, behind a slow batch) is judged when it is
    /// admitted, not refused because other requests were admitted while it waited.
    static func apply(_ takes: [Take], at time: Double = 0, on db: any SQLDatabase) async throws -> [RateLimiter.Decision] {
        var order: [String] = []
        var positions: [String: [Int]] = [:]
        for (index, take) in takes.enumerated() {
            if positions[take.key] == nil { order.append(take.key) }
            positions[take.key, default: []].append(index)
        }
        let claims = order.map { key -> CommandStore.RateClaim in
            let last = takes[positions[key]!.last!]
            return CommandStore.RateClaim(key: key, count: positions[key]!.count, interval: last.limit.interval, window: last.limit.window,
                                          now: max(time, positions[key]!.map { takes[$0].now }.max()!))
        }
        let outcome = try await CommandStore.takeRates(claims, on: db)
        var decisions = [RateLimiter.Decision?](repeating: nil, count: takes.count)
        for claim in claims {
            let (base, taken) = outcome[claim.key] ?? (claim.now, 0)
            let limit = takes[positions[claim.key]!.last!].limit
            for (n, index) in positions[claim.key]!.enumerated() {
                decisions[index] = n < taken
                    ? .allowed(at: base + Double(n + 1) * claim.interval, limit: limit, now: claim.now)
                    : .refused(at: base + Double(taken) * claim.interval, limit: limit, now: claim.now)
            }
        }
        return decisions.map { $0! }
    }
}
