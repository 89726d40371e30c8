import Synchronization

/// GCRA (the generic cell rate algorithm) per install: `perSecond` sustained, `burst` at once.
/// One theoretical arrival time per key, so memory is one number per active install.
public final class RateLimiter: Sendable {
    public struct Limit: Sendable, Equatable {
        public var perSecond: Double
        public var burst: Int
        public init(perSecond: Double, burst: Int) {
            self.perSecond = perSecond
            self.burst = burst
        }
    }

    /// What a decision tells the caller (and the `RateLimit-*` headers).
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        public var limit: Int
        public var remaining: Int
        /// Seconds until the full burst is available again.
        public var resetSeconds: Int
        /// Seconds to wait before a retry can pass (when refused).
        public var retryAfterSeconds: Int
    }

    private let tats = Mutex<[String: Double]>([:])

    public init() {}

    /// Takes one request from `key`'s allowance at time `now` (seconds), or refuses.
    public func take(_ key: String, limit: Limit, now: Double) -> Decision {
        decide(key, limit: limit, now: now, consume: true)
    }

    /// The allowance without taking from it.
    public func peek(_ key: String, limit: Limit, now: Double) -> Decision {
        decide(key, limit: limit, now: now, consume: false)
    }

    private func decide(_ key: String, limit: Limit, now: Double, consume: Bool) -> Decision {
        let interval = 1 / max(limit.perSecond, 0.000_001)
        let window = interval * Double(max(limit.burst, 1))
        return tats.withLock { tats in
            let tat = max(tats[key] ?? now, now)
            let next = tat + interval
            if consume && next - now > window {
                let wait = next - window - now
                return Decision(allowed: false, limit: limit.burst, remaining: 0,
                                resetSeconds: Int((tat - now).rounded(.up)), retryAfterSeconds: max(1, Int(wait.rounded(.up))))
            }
            let used = consume ? next : tat
            if consume { tats[key] = next }
            let remaining = Int(((window - (used - now)) / interval).rounded(.down))
            return Decision(allowed: true, limit: limit.burst, remaining: max(0, remaining),
                            resetSeconds: Int((used - now).rounded(.up)), retryAfterSeconds: 0)
        }
    }
}

extension PlanLimits {
    /// Default command rate per install by plan.
    public static let defaultCommandRates: [Plan: RateLimiter.Limit] = [
        .free: .init(perSecond: 10, burst: 20),
        .pro: .init(perSecond: 100, burst: 200),
        .enterprise: .init(perSecond: 1000, burst: 2000),
    ]
}
