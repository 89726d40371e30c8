import Synchronization

/// GCRA (the generic cell rate algorithm) per key (an install, or a client address):
/// `perSecond` sustained, `burst` at once. One theoretical arrival time per key; keys that owe
/// nothing any more are dropped once there are many, so memory follows the keys active lately.
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

    private struct State {
        /// Per key: the theoretical arrival time and the limit it was computed under.
        var tats: [String: (tat: Double, limit: Limit)] = [:]
        /// The key count at which idle keys are next dropped.
        var pruneAt: Int
    }

    private let state: Mutex<State>
    private let minimumPruneAt: Int

    /// `pruneAt`: how many keys may be kept before those that owe nothing are dropped.
    public init(pruneAt: Int = 100_000) {
        minimumPruneAt = pruneAt
        state = Mutex(State(pruneAt: pruneAt))
    }

    /// How many keys are kept (for tests).
    public var keyCount: Int { state.withLock { $0.tats.count } }

    /// Takes one request from `key`'s allowance at time `now` (seconds), or refuses.
    public func take(_ key: String, limit: Limit, now: Double) -> Decision {
        decide(key, limit: limit, now: now, consume: true)
    }

    /// The allowance without taking from it.
    public func peek(_ key: String, limit: Limit, now: Double) -> Decision {
        decide(key, limit: limit, now: now, consume: false)
    }

    private func decide(_ key: String, limit: Limit, now: Double, consume: Bool) -> Decision {
        let interval = limit.interval
        let window = limit.window
        return state.withLock { state in
            var tat = max(state.tats[key]?.tat ?? now, now)
            if let stored = state.tats[key], stored.limit != limit {
                // The limit changed: carry at most one burst of the new limit's debt, so a raised
                // limit counts at once rather than after the old one's debt is paid.
                tat = min(tat, now + window)
                state.tats[key] = (tat, limit)
            }
            let next = tat + interval
            // (A millionth of an interval of slack: a hundred additions of 0.01 are not exactly 1.)
            if consume && next - now > window + interval * 1e-6 {
                return .refused(at: tat, limit: limit, now: now)
            }
            let used = consume ? next : tat
            if consume {
                state.tats[key] = (next, limit)
                if state.tats.count > state.pruneAt {
                    // A key whose time has passed owes nothing: forgetting it changes no answer.
                    state.tats = state.tats.filter { $0.value.tat > now }
                    state.pruneAt = max(minimumPruneAt, state.tats.count * 2)
                }
            }
            return .allowed(at: used, limit: limit, now: now)
        }
    }
}

extension RateLimiter.Limit {
    /// Seconds between two requests at the sustained rate.
    public var interval: Double { 1 / max(perSecond, 0.000_001) }
    /// How far ahead of now the arrival time may run: the burst.
    public var window: Double { interval * Double(max(burst, 1)) }
}

extension RateLimiter.Decision {
    /// A request allowed, leaving the key's arrival time at `tat`.
    static func allowed(at tat: Double, limit: RateLimiter.Limit, now: Double) -> Self {
        let remaining = Int(((limit.window - (tat - now)) / limit.interval + 1e-6).rounded(.down))
        return Self(allowed: true, limit: limit.burst, remaining: max(0, remaining), resetSeconds: Int((tat - now).rounded(.up)), retryAfterSeconds: 0)
    }

    /// A request refused while the key's arrival time is `tat`.
    static func refused(at tat: Double, limit: RateLimiter.Limit, now: Double) -> Self {
        let wait = tat + limit.interval - limit.window - now
        return Self(allowed: false, limit: limit.burst, remaining: 0, resetSeconds: Int((tat - now).rounded(.up)), retryAfterSeconds: max(1, Int(wait.rounded(.up))))
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
