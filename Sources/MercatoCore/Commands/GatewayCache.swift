import MercatoStorage
import Synchronization

/// The gateway's per-install facts, kept between commands: the install, its org's name and
/// plan, the app's signing config from its latest manifest, the granted scopes, and the command
/// secrets' key bytes with when each stops verifying. Loading them costs six statements, a
/// manifest JSON decode and a vault open per secret; a hit costs nothing.
///
/// A hit is never trusted on its own: every authenticated command reads the entry's
/// ``CommandCheck/Stamp`` in the same statement as its idempotency lookup (the install's status,
/// version, scopes, updated_at and removed_at, the app's latest version, the app's newest secret
/// id) and reloads the entry when anything differs. So a change made by any node (disable,
/// uninstall, config or scope change, upgrade, new app version, secret rotation) takes effect on
/// the next command everywhere, with no TTL. A secret's end of validity is applied from its
/// `valid_until` at each request. Org name and plan (no API changes them today) are refreshed by
/// ``maxAge``.
final class GatewayCache: Sendable {
    struct Entry: Sendable {
        var target: CommandGateway.Target
        var stamp: CommandCheck.Stamp
        /// Key bytes of the HMAC command secrets, newest first, and when each stops verifying.
        var keys: [(key: [UInt8], validUntil: Int64?)]
        var publicKey: [UInt8]?
        var loadedAt: ContinuousClock.Instant

        /// The keys that verify at `millis` (`valid_until` is exclusive, as in storage).
        func keys(at millis: Int64) -> [[UInt8]] {
            keys.compactMap { entry in entry.validUntil.map { $0 > millis } ?? true ? entry.key : nil }
        }
    }

    /// Entries older than this are reloaded even when their stamp matches.
    static let maxAge: Duration = .seconds(60)

    private let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func get(_ installID: String) -> Entry? {
        guard let entry = entries.withLock({ $0[installID] }) else { return nil }
        guard ContinuousClock.now - entry.loadedAt < Self.maxAge else {
            remove(installID)
            return nil
        }
        return entry
    }

    func put(_ installID: String, _ entry: Entry) {
        entries.withLock { entries in
            if entries[installID] == nil, entries.count >= capacity {
                // Bounded: drop an eighth (arbitrary entries; a dropped one reloads on its next command).
                for key in entries.keys.prefix(max(1, capacity / 8)) { entries[key] = nil }
            }
            entries[installID] = entry
        }
    }

    func remove(_ installID: String) {
        _ = entries.withLock { $0.removeValue(forKey: installID) }
    }

    var count: Int { entries.withLock { $0.count } }
}
