import Foundation
import Logging
import MercatoStorage
import PostgresNIO
import SQLKit
import Synchronization

/// The command rate of each install across every node on one PostgreSQL (CONTRACT §12): the
/// same GCRA as ``RateLimiter``, with its state in `install_rate_state`, spent through leases.
///
/// A node claims a few of a key's tokens at once (a *lease*: the shared arrival time moves on
/// by all of them in one locked update) and spends them here without a statement; when they
/// are gone (or older than ``leaseSeconds`` × 2, when unspent ones are dropped) it claims
/// again. A lease is sized to what this node spent of the key lately (its rate over
/// ``leaseSeconds``), starts at one token and is capped at a quarter of the burst, so nodes
/// share a tight limit fairly and a busy install costs a claim per lease rather than per
/// request. A claim also asks for the requests that waited on the node's previous one (up to
/// the burst): those are there to spend them at once, and without them a node would get one
/// token per claim's round trip, however slow, and a key's limit would shrink to the nodes'
/// claims a second. A claim that found the window full tells the node when a lease can be had again,
/// and it refuses locally until then: a key held at its limit costs each node a claim per
/// lease too, not one per request refused. Claims of all keys
/// gather in a group commit; one claim per key is in flight on a node, and the requests that
/// arrive meanwhile wait for it and spend what it brought.
///
/// What nodes spend together stays within the limit: every token spent was counted in the
/// shared state first. A lease spent late (up to its age limit) can make one burst a little
/// larger than `burst`, by at most the nodes' leases; tokens dropped unspent are lost to the
/// key, which the sizing keeps to about one per claim.
final class SharedRateLimiter: Sendable {
    /// Requests of one key (a claim of `count` tokens at `now`).
    struct Take: Sendable {
        var key: String
        var limit: RateLimiter.Limit
        var now: Double
        var count: Int = 1
    }

    /// What one take got: `taken` of its tokens, the shared arrival time after them, and the
    /// time it was decided at.
    struct Grant: Sendable, Equatable {
        var taken: Int
        var tat: Double
        var now: Double
    }

    /// How long a lease is meant to last at the rate the node spends; unspent tokens are
    /// dropped after twice that.
    static let leaseSeconds = 0.1

    private struct Lease {
        var limit: RateLimiter.Limit
        /// Tokens claimed and not yet spent, valid until `expires`.
        var tokens = 0
        var expires = 0.0
        /// The shared arrival time the last claim left.
        var tat = 0.0
        /// Before this time the shared window is known to be full.
        var refusedUntil = -Double.infinity
        var claiming = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Requests spent since `lastClaim` (for the lease's size).
        var spent = 0
        var lastClaim: Double?
        /// Requests that waited for the last claim when it brought tokens: the next claim asks
        /// for them too, so a node whose claims are slow still spends what the key allows.
        var waited = 0
    }

    private enum Step {
        case decided(RateLimiter.Decision)
        case wait
        /// Claim `wanted` tokens; `lease` of them is what the node's own rate asks for.
        case claim(wanted: Int, lease: Int)
    }

    private struct Leases {
        var byKey: [String: Lease] = [:]
        /// The key count at which leases that hold nothing are next dropped.
        var pruneAt = 10_000
    }

    private let commit: GroupCommit<Take, Grant>
    private let leases = Mutex(Leases())
    private let claimed = Atomic<Int>(0)

    /// How many claims storage answered (for tests).
    var claims: Int { claimed.load(ordering: .relaxed) }

    /// `batchTime` is the time a batch of claims is decided at when later than its requests'
    /// (tests give 0: their requests' own times count).
    init(database: Database, batchTime: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        commit = GroupCommit(postgres: database, maxBatch: 512) { takes, connection in
            try await Self.claim(takes, at: batchTime(), on: connection, logger: database.logger)
        }
    }

    /// Takes one request from `key`'s allowance at `now` (seconds), or refuses; throws when
    /// storage could not decide.
    func take(_ key: String, limit: RateLimiter.Limit, now: Double) async throws -> RateLimiter.Decision {
        while true {
            switch leases.withLock({ step(&$0, key: key, limit: limit, now: now) }) {
            case .decided(let decision):
                return decision
            case .wait:
                await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                    let waiting = leases.withLock { leases -> Bool in
                        guard leases.byKey[key]?.claiming == true else { return false }
                        leases.byKey[key]!.waiters.append(waiter)
                        return true
                    }
                    if !waiting { waiter.resume() }
                }
            case .claim(let wanted, let count):
                let grant: Grant
                do {
                    grant = try await commit.submit(Take(key: key, limit: limit, now: now, count: wanted))
                } catch {
                    for waiter in leases.withLock({ settle(&$0, key: key, grant: nil, asked: wanted, lease: count, limit: limit) }) { waiter.resume() }
                    // The command has not run: a claim whose outcome is unknown changes nothing of it.
                    if let error = error as? StorageUnavailable { throw error.aheadOfTheChange }
                    throw error
                }
                claimed.add(1, ordering: .relaxed)
                let waiters = leases.withLock { settle(&$0, key: key, grant: grant, asked: wanted, lease: count, limit: limit) }
                for waiter in waiters { waiter.resume() }
                // The first of the lease's tokens is this request's.
                return grant.taken > 0
                    ? .allowed(at: grant.tat - Double(grant.taken - 1) * limit.interval, limit: limit, now: grant.now)
                    : .refused(at: grant.tat, limit: limit, now: grant.now)
            }
        }
    }

    private func step(_ leases: inout Leases, key: String, limit: RateLimiter.Limit, now: Double) -> Step {
        if leases.byKey[key] == nil && leases.byKey.count >= leases.pruneAt {
            // A lease with nothing in hand and no refusal pending changes no answer when forgotten.
            leases.byKey = leases.byKey.filter { $0.value.claiming || ($0.value.tokens > 0 && $0.value.expires > now) || $0.value.refusedUntil > now }
            leases.pruneAt = max(10_000, leases.byKey.count * 2)
        }
        var lease = leases.byKey[key] ?? Lease(limit: limit)
        defer { leases.byKey[key] = lease }
        if lease.claiming { return .wait }
        if lease.limit != limit { lease = Lease(limit: limit) }
        if lease.tokens > 0 && now < lease.expires {
            lease.tokens -= 1
            lease.spent += 1
            // Tokens this node holds still count as the key's remaining allowance.
            return .decided(.allowed(at: lease.tat - Double(lease.tokens) * limit.interval, limit: limit, now: now))
        }
        if now < lease.refusedUntil {
            return .decided(.refused(at: lease.tat, limit: limit, now: now))
        }
        var count = 1
        if let last = lease.lastClaim {
            let rate = Double(lease.spent + 1) / max(now - last, 0.001)
            let cap = max(1, min(Int(limit.perSecond * Self.leaseSeconds), limit.burst / 4))
            count = min(cap, max(1, Int((rate * Self.leaseSeconds).rounded(.up))))
        }
        let wanted = max(count, min(lease.waited, limit.burst))
        lease.waited = 0
        lease.tokens = 0
        lease.spent = 0
        lease.lastClaim = now
        lease.claiming = true
        return .claim(wanted: wanted, lease: count)
    }

    /// Ends `key`'s claim with what it got (nothing when it failed); answers who waited for it.
    private func settle(_ leases: inout Leases, key: String, grant: Grant?, asked: Int, lease wanted: Int, limit: RateLimiter.Limit) -> [CheckedContinuation<Void, Never>] {
        guard var lease = leases.byKey[key] else { return [] }
        let waiters = lease.waiters
        lease.waiters = []
        lease.claiming = false
        if let grant {
            lease.spent += min(grant.taken, 1)
            lease.tat = grant.tat
            lease.tokens = max(0, grant.taken - 1)
            // Those the tokens brought do not serve will claim again, for all of them at once.
            lease.waited = grant.taken > 0 ? max(0, waiters.count - lease.tokens) : 0
            lease.expires = grant.now + 2 * Self.leaseSeconds
            // Less than asked: the window is full. Once what the claim brought is spent, the node
            // refuses locally until the shared time has room for its lease (at least one token;
            // the shared time never moves back), so nodes of a full key claim a lease each now and
            // then rather than race per token.
            lease.refusedUntil = grant.taken < asked ? grant.tat + Double(max(wanted, 1)) * limit.interval - limit.window : -.infinity
        }
        leases.byKey[key] = lease
        return waiters
    }

    /// Decides single requests (a take of one token each) as ``claim(_:at:on:)`` does; for tests.
    static func apply(_ takes: [Take], at time: Double = 0, in database: Database) async throws -> [RateLimiter.Decision] {
        guard let grants = try await database.withPostgres({ try await claim(takes, at: time, on: $0, logger: database.logger) }) else {
            preconditionFailure("the shared rate state is for several nodes on PostgreSQL")
        }
        return zip(takes, grants).map { take, grant in
            grant.taken > 0 ? .allowed(at: grant.tat, limit: take.limit, now: grant.now) : .refused(at: grant.tat, limit: take.limit, now: grant.now)
        }
    }

    /// One claim per key (its takes in arrival order, under the latest limit and time), then
    /// each take gets of the tokens taken what is left, in order, up to its count.
    ///
    /// Decided at `time` (when the batch runs) when that is later than the requests' own: a
    /// request that waited (for a connection, behind a slow batch) is judged when it is
    /// admitted, not refused because other requests were admitted while it waited.
    static func claim(_ takes: [Take], at time: Double = 0, on connection: PostgresConnection, logger: Logger) async throws -> [Grant] {
        var order: [String] = []
        var positions: [String: [Int]] = [:]
        for (index, take) in takes.enumerated() {
            if positions[take.key] == nil { order.append(take.key) }
            positions[take.key, default: []].append(index)
        }
        let claims = order.map { key -> CommandStore.RateClaim in
            let last = takes[positions[key]!.last!]
            return CommandStore.RateClaim(key: key, count: positions[key]!.map { takes[$0].count }.reduce(0, +),
                                          interval: last.limit.interval, window: last.limit.window,
                                          now: max(time, positions[key]!.map { takes[$0].now }.max()!))
        }
        let outcome = try await CommandStore.takeRates(claims, on: connection, logger: logger)
        var grants = [Grant?](repeating: nil, count: takes.count)
        for claim in claims {
            let (base, taken) = outcome[claim.key] ?? (claim.now, 0)
            var spent = 0
            for index in positions[claim.key]! {
                let mine = min(takes[index].count, taken - spent)
                spent += mine
                grants[index] = Grant(taken: mine, tat: base + Double(spent) * claim.interval, now: claim.now)
            }
        }
        return grants.map { $0! }
    }
}
