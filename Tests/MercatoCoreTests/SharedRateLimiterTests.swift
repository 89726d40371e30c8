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
}
