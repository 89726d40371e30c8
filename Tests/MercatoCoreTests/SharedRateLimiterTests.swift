@testable import MercatoCore
import MercatoStorage
import MercatoTestSupport
import Testing

/// CONTRACT §12: the rate state shared by the nodes (PostgreSQL) decides exactly as the
/// in-process GCRA does, whether requests come one at a time or many in one batch.
@Suite("Shared rate limiter (PostgreSQL)")
struct SharedRateLimiterTests {
    @Test func batchesDecideAsTheInProcessLimiterDoes() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let local = RateLimiter()
            let limits = ["ins_a": RateLimiter.Limit(perSecond: 10, burst: 5), "ins_b": RateLimiter.Limit(perSecond: 2, burst: 3)]
            // Batches of arrivals (key, seconds), as group commits would gather them.
            let batches: [[(String, Double)]] = [
                [("ins_a", 100), ("ins_a", 100), ("ins_b", 100), ("ins_a", 100)],
                [("ins_a", 100), ("ins_a", 100), ("ins_a", 100), ("ins_b", 100), ("ins_b", 100), ("ins_b", 100)],
                [("ins_a", 100.1), ("ins_a", 100.1)],
                [("ins_b", 100.6), ("ins_b", 101.1), ("ins_a", 101)],
                [("ins_a", 200)] + Array(repeating: ("ins_a", 200), count: 7),
            ]
            var allowed = 0
            for batch in batches {
                let takes = batch.map { SharedRateLimiter.Take(key: $0.0, limit: limits[$0.0]!, now: $0.1) }
                let shared = try await test.database.transaction { try await SharedRateLimiter.apply(takes, on: $0) }
                // Within a batch the shared side decides at the batch's latest time, as the
                // local limiter does when it is given that time.
                let expected = takes.map { take in
                    local.take(take.key, limit: take.limit, now: takes.filter { $0.key == take.key }.map(\.now).max()!)
                }
                #expect(shared == expected, "\(batch)")
                allowed += shared.filter(\.allowed).count
            }
            #expect(allowed > 0 && allowed < batches.map(\.count).reduce(0, +))
        }
    }

    /// Nodes' batches commit in any order: one whose requests arrived earlier (an older `now`)
    /// may commit after one that filled the window. It must take nothing and leave the state
    /// where it was, or the next batches get more than the limit.
    @Test func aLateBatchWithAnOlderTimeNeitherTakesNorLowersTheState() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let limit = RateLimiter.Limit(perSecond: 50, burst: 5)
            func take(_ count: Int, at now: Double) async throws -> Int {
                let takes = Array(repeating: SharedRateLimiter.Take(key: "ins_late", limit: limit, now: now), count: count)
                return try await test.database.transaction { try await SharedRateLimiter.apply(takes, on: $0) }.filter(\.allowed).count
            }
            let burst = try await take(10, at: 100.10)
            #expect(burst == 5)   // the burst, up to 100.20
            let late = try await take(10, at: 100.05)
            #expect(late == 0)   // late, older time: nothing
            // At 100.15 the window (0.1 s) has room for two more (100.20 + 2 × 0.02 ≤ 100.25);
            // a state moved back to 100.15 by the late batch would allow five.
            let next = try await take(10, at: 100.15)
            #expect(next == 2)
        }
    }

    /// A changed limit counts at once: the stored state keeps at most one burst of the new limit.
    @Test func aRaisedLimitIsNotHeldBackByTheOldDebt() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let slow = RateLimiter.Limit(perSecond: 1, burst: 10)
            let takes = Array(repeating: SharedRateLimiter.Take(key: "ins_raise", limit: slow, now: 100), count: 10)
            _ = try await test.database.transaction { try await SharedRateLimiter.apply(takes, on: $0) }   // state at 110
            try await test.database.transaction { try await CommandStore.setRateLimit(install: "ins_raise", perSecond: 100, burst: 5, at: 100_000, on: $0) }
            let fast = RateLimiter.Limit(perSecond: 100, burst: 5)
            let after = try await test.database.transaction {
                try await SharedRateLimiter.apply([SharedRateLimiter.Take(key: "ins_raise", limit: fast, now: 100.05)], on: $0)
            }
            #expect(after.map(\.allowed) == [true])
        }
    }
}
