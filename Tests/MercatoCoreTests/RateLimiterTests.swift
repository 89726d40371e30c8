import MercatoCore
import Testing

/// The GCRA per install, on a hand-given clock (seconds).
@Suite("Rate limiter (GCRA)")
struct RateLimiterTests {
    let key = "ins_test"

    @Test func aBurstPassesThenRefusalsSayWhenToRetry() {
        let limiter = RateLimiter()
        let limit = RateLimiter.Limit(perSecond: 10, burst: 5)
        let remaining = (0 ..< 5).map { _ in limiter.take(key, limit: limit, now: 100).remaining }
        #expect(remaining == [4, 3, 2, 1, 0])
        let refused = limiter.take(key, limit: limit, now: 100)
        #expect(!refused.allowed && refused.remaining == 0 && refused.retryAfterSeconds == 1)
        // One interval later one more passes; a peek takes nothing.
        #expect(limiter.peek(key, limit: limit, now: 100.1).remaining == 1)
        #expect(limiter.take(key, limit: limit, now: 100.1).allowed)
        #expect(!limiter.take(key, limit: limit, now: 100.1).allowed)
        // Other installs have their own allowance.
        #expect(limiter.take("ins_other", limit: limit, now: 100.1).remaining == 4)
    }

    @Test func aRaisedLimitCountsAtOnceALoweredOneKeepsTheDebt() {
        let limiter = RateLimiter()
        let slow = RateLimiter.Limit(perSecond: 0.5, burst: 1)
        #expect(limiter.take(key, limit: slow, now: 0).allowed)
        #expect(!limiter.take(key, limit: slow, now: 0.01).allowed)          // the old debt runs to 2 s
        let fast = RateLimiter.Limit(perSecond: 1000, burst: 1000)
        #expect(!limiter.take(key, limit: fast, now: 0.02).allowed)          // a full burst of the new limit is owed...
        #expect(limiter.take(key, limit: fast, now: 0.03).allowed)           // ...and paid back at its rate, not the old one's

        let lowered = RateLimiter()
        let wide = RateLimiter.Limit(perSecond: 100, burst: 100)
        for _ in 0 ..< 100 { #expect(lowered.take(key, limit: wide, now: 0).allowed) }
        let narrow = RateLimiter.Limit(perSecond: 1, burst: 1)
        #expect(!lowered.take(key, limit: narrow, now: 0.5).allowed)        // what was spent still counts
        #expect(lowered.take(key, limit: narrow, now: 1.0).allowed)
        #expect(!lowered.take(key, limit: narrow, now: 1.5).allowed)
    }

    @Test func keysThatOweNothingAreDroppedOnceThereAreMany() {
        let limiter = RateLimiter(pruneAt: 100)
        let limit = RateLimiter.Limit(perSecond: 1, burst: 5)
        for n in 0 ..< 1000 { _ = limiter.take("addr-\(n)", limit: limit, now: Double(n) * 10) }
        #expect(limiter.keyCount <= 101)
        // A prune drops only keys that owe nothing: the busy key's spending survives it.
        let busy = RateLimiter(pruneAt: 3)
        for _ in 0 ..< 5 { _ = busy.take("busy", limit: limit, now: 0) }      // owes until 5
        for t in 1 ... 4 { _ = busy.take("idle-\(t)", limit: limit, now: Double(t)) }  // each owes 1 s
        #expect(busy.keyCount == 3)                                             // pruned at 3 s: busy, idle-3; then idle-4
        #expect(busy.peek("busy", limit: limit, now: 4.5).remaining == 4)       // a dropped key would show 5
    }
}
