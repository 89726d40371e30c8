import Foundation
import Synchronization
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
                let shared = try await SharedRateLimiter.apply(takes, in: test.database)
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
                return try await SharedRateLimiter.apply(takes, in: test.database).filter(\.allowed).count
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
            _ = try await SharedRateLimiter.apply(takes, in: test.database)   // state at 110
            try await test.database.transaction { try await CommandStore.setRateLimit(install: "ins_raise", perSecond: 100, burst: 5, at: 100_000, on: $0) }
            let fast = RateLimiter.Limit(perSecond: 100, burst: 5)
            let after = try await SharedRateLimiter.apply([SharedRateLimiter.Take(key: "ins_raise", limit: fast, now: 100.05)], in: test.database)
            #expect(after.map(\.allowed) == [true])
        }
    }

    /// A node spends a lease without a statement per request: a busy key costs a claim per
    /// lease (which grows to the node's rate, up to a quarter of the burst), not per request.
    @Test func aLeaseServesManyRequestsWithFewClaims() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let limiter = SharedRateLimiter(database: test.database, batchTime: { 0 })
            let limit = RateLimiter.Limit(perSecond: 1000, burst: 2000)
            var allowed = 0
            for n in 0..<300 {   // 2,000 a second
                if try await limiter.take("ins_busy", limit: limit, now: 100 + Double(n) * 0.0005).allowed { allowed += 1 }
            }
            #expect(allowed == 300)
            // One token first, then leases of up to 100 (1,000/s over 0.1 s): a handful of claims.
            #expect(limiter.claims >= 3 && limiter.claims <= 12, "\(limiter.claims) claims")
        }
    }

    /// A claim that finds the window full lets the node refuse locally until the shared time
    /// allows one more, without asking again.
    @Test func aFullWindowIsRefusedLocallyUntilItOpens() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let limiter = SharedRateLimiter(database: test.database, batchTime: { 0 })
            let limit = RateLimiter.Limit(perSecond: 1, burst: 3)   // leases of one token
            let now = 100.0
            var decisions: [RateLimiter.Decision] = []
            for n in 0..<50 { decisions.append(try await limiter.take("ins_full", limit: limit, now: now + Double(n) * 0.001)) }
            #expect(decisions.prefix(3).allSatisfy { $0.allowed })
            #expect(decisions.dropFirst(3).allSatisfy { !$0.allowed && $0.retryAfterSeconds == 1 })
            #expect(limiter.claims == 4, "three tokens and the claim that found none")
        }
    }

    /// Requests that arrive while a node's claim is on its way wait for it; the next claim asks
    /// for all of them, so a slow claim still lets the key's allowance through (one token per
    /// claim would cap a node at one request per round trip).
    @Test func requestsThatWaitedOnASlowClaimAreClaimedTogether() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let slowFirst = Mutex(true)
            // The first claim takes 100 ms to be decided, as on a loaded PostgreSQL (a blocked
            // thread: kept short, the suite's other tests share it).
            let limiter = SharedRateLimiter(database: test.database, batchTime: {
                if slowFirst.withLock({ first in let was = first; first = false; return was }) { Thread.sleep(forTimeInterval: 0.1) }
                return 0
            })
            let limit = RateLimiter.Limit(perSecond: 50, burst: 5)   // leases of one token
            let first = Task { try await limiter.take("ins_slow", limit: limit, now: 100) }
            try await Task.sleep(for: .milliseconds(20))
            let waiting = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 { group.addTask { try await limiter.take("ins_slow", limit: limit, now: 100.001).allowed } }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            let allowed = waiting.filter { $0 }.count + (try await first.value.allowed ? 1 : 0)
            // The burst of five: one request's token, then four of those who waited, in one
            // claim; the last is refused (locally: the second claim found the window full). One
            // token a claim would have taken six claims.
            #expect(allowed == 5)
            #expect(limiter.claims == 2, "\(limiter.claims) claims")
        }
    }

    /// Several nodes (limiters) on one key never spend more together than the shared state
    /// counted: at most the burst plus the rate for the time they ran.
    @Test func nodesTogetherStayWithinTheLimit() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let nodes = (0..<3).map { _ in SharedRateLimiter(database: test.database, batchTime: { 0 }) }
            let limit = RateLimiter.Limit(perSecond: 200, burst: 40)
            // 1,200 requests, 1,000 a second offered (a tick each, in the order they are made).
            let clock = Ticks(start: 100, step: 0.001)
            let (allowed, offered) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for node in nodes {
                    for _ in 0..<4 {
                        group.addTask {
                            var allowed = 0
                            for _ in 0..<100 {
                                if try await node.take("ins_shared", limit: limit, now: clock.next()).allowed { allowed += 1 }
                            }
                            return (allowed, 100)
                        }
                    }
                }
                return try await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            }
            let elapsed = clock.next() - 100
            let most = Double(limit.burst) + limit.perSecond * elapsed
            #expect(Double(allowed) <= most + 1, "\(allowed) allowed in \(elapsed) s")
            // Under a load well above the limit, nodes spend most of it (tokens dropped unspent are few).
            #expect(Double(allowed) >= 0.6 * most, "\(allowed) allowed in \(elapsed) s")
            // Claims follow what the limit lets through (a node refuses locally while the window
            // is full), not the load offered.
            let claims = nodes.map(\.claims).reduce(0, +)
            #expect(claims * 5 < offered, "\(claims) claims, \(offered) offered")
        }
    }
}

/// A time that moves on by `step` each time it is read.
private final class Ticks: Sendable {
    private let count = Mutex(0)
    private let start: Double
    private let step: Double
    init(start: Double, step: Double) {
        self.start = start
        self.step = step
    }
    func next() -> Double { start + Double(count.withLock { $0 += 1; return $0 }) * step }
}
