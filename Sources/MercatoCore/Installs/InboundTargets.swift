import Foundation
import MercatoHooks
import MercatoStorage
import Synchronization

/// What the inbound routes (CONTRACT §11) keep between a provider's requests, per install: the
/// install as last read, its org's name, and the secrets opened for each provider. A provider
/// posts to one install many times a second; without this every request read the org and the
/// app's declaration, and read and opened the sealed secret.
///
/// An entry is never trusted alone: each request reads the install's row (one point read it
/// needs anyway to know the install is active), and an entry whose row differs in any column
/// (status, version, config keys, `updated_at`: every config write moves it) is dropped. An
/// entry is also dropped after ``maxAge``, which bounds an org rename and a config change made
/// in the same millisecond as the entry's load.
final class InboundTargets: Sendable {
    struct Entry: Sendable {
        var install: InstallRecord
        var orgName: String
        /// provider → the secret's value (`nil`: the install receives none from it).
        var secrets: [String: String?] = [:]
        var loadedAt: ContinuousClock.Instant
    }

    static let maxAge: Duration = .seconds(60)

    private let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The entry of `install` when it was made from this very row and is young enough.
    func get(_ install: InstallRecord) -> Entry? {
        guard let entry = entries.withLock({ $0[install.id] }) else { return nil }
        guard entry.install == install, ContinuousClock.now - entry.loadedAt < Self.maxAge else {
            remove(install.id)
            return nil
        }
        return entry
    }

    func put(_ entry: Entry) {
        entries.withLock { entries in
            if entries[entry.install.id] == nil, entries.count >= capacity {
                // Bounded: drop an eighth (a dropped install reloads on its next request).
                for key in entries.keys.prefix(max(1, capacity / 8)) { entries[key] = nil }
            }
            entries[entry.install.id] = entry
        }
    }

    /// Adds `provider`'s secret to the entry of `install`, if that entry is still of this row.
    func keep(secret: String?, provider: String, for install: InstallRecord) {
        entries.withLock { entries in
            guard var entry = entries[install.id], entry.install == install else { return }
            entry.secrets[provider] = .some(secret)
            entries[install.id] = entry
        }
    }

    func remove(_ id: String) {
        _ = entries.withLock { $0.removeValue(forKey: id) }
    }
}
