import Foundation
import MercatoHooks
import Synchronization

/// What an org admin setting up a provider needs to see: did the provider's events arrive, and
/// if requests were refused, why (a wrong secret pasted is the usual first mistake).
///
/// - The last new event stored, per install and provider, is kept in the install's storage
///   under `seen:<provider>` (`at`, `event_id`, `event_type`), written at most once a
///   ``InboundStatus/interval`` per install and provider on each node: the first after a quiet
///   spell at once, so an admin's test event shows at the next reload, while a busy install
///   costs one write a minute rather than one an event.
/// - The last request refused by its signature check (`at`, `code`, `detail`: the answer the
///   provider got, which holds nothing of the secret or the body) is kept in this process's
///   memory only: a refused request stores nothing (CONTRACT §11), and a flood of forged
///   requests costs no write. With several nodes each knows the refusals it answered.
///
/// `GET /api/v1/inbound/{install_id}` answers both (``InboundPlugin/handleRoute(_:_:)``).
final class InboundStatus: Sendable {
    /// Longest a busy install's note lags behind.
    static let interval: TimeInterval = 60
    /// Notes remembered as written before the memory is cleared (each then written once more).
    static let remembered = 100_000

    /// An install's provider.
    struct Slot: Hashable {
        var install: String
        var provider: String
    }

    private let written = Mutex<[Slot: Date]>([:])
    /// The last refusal per install and provider.
    private let refusals = Mutex<[Slot: [String: JSONValue]]>([:])

    init() {}

    /// Whether the note is to be written now; if so, it counts as written.
    func due(provider: String, _ install: String, at now: Date) -> Bool {
        let key = Slot(install: install, provider: provider)
        return written.withLock { written in
            if let last = written[key], now >= last, now.timeIntervalSince(last) < Self.interval { return false }
            if written.count >= Self.remembered { written.removeAll(keepingCapacity: true) }
            written[key] = now
            return true
        }
    }

    /// Forgets that a note was written (its write failed: the next request tries again).
    func forget(provider: String, _ install: String) {
        _ = written.withLock { $0.removeValue(forKey: Slot(install: install, provider: provider)) }
    }

    /// Where a provider's last event is noted in the install's storage.
    static let seenPrefix = "seen:"

    /// Forgets everything noted in memory of an install (it is gone).
    func forget(install: String) {
        written.withLock { $0 = $0.filter { $0.key.install != install } }
        refusals.withLock { $0 = $0.filter { $0.key.install != install } }
    }

    /// Remembers a refusal (in memory: see the type's documentation).
    func refused(_ error: CommandError, provider: String, install: String, at now: Date) {
        let note: [String: JSONValue] = ["at": .string(PluginSupport.timestamp(now)), "code": .string(error.code), "detail": .string(error.message)]
        refusals.withLock { refusals in
            if refusals.count >= Self.remembered { refusals.removeAll(keepingCapacity: true) }
            refusals[Slot(install: install, provider: provider)] = note
        }
    }

    /// Notes the provider's last event when it is due. A failed write is not the request's failure: the event
    /// itself is stored (or the refusal answered) either way.
    func seen(provider: String, _ value: [String: JSONValue], install: String, at now: Date, _ context: HookContext) async {
        guard due(provider: provider, install, at: now) else { return }
        var value = value
        value["at"] = .string(PluginSupport.timestamp(now))
        do {
            _ = try await context.storage.set(Self.seenPrefix + provider, .object(value))
        } catch {
            // Storage trouble, or the install's storage full: the next event tries again.
            forget(provider: provider, install)
        }
    }

    /// The install's notes, per provider that has one, in provider order. A refusal is shown
    /// while the install still keeps that provider's secret: once it is uninstalled (perhaps
    /// through another node, whose hook cleared only that node's memory) or the secret is
    /// cleared, this node's note of it is stale and is dropped.
    func read(install: String, _ storage: any PluginStorage, _ api: any PluginAPI) async throws -> JSONValue {
        var byProvider: [String: [String: JSONValue]] = [:]
        func entry(_ provider: String) -> [String: JSONValue] { ["provider": .string(provider), "last_received": .null, "last_refused": .null] }
        for key in try await storage.keys(prefix: Self.seenPrefix, after: nil, limit: 64) {
            guard let stored = try await storage.get(key) else { continue }
            let provider = String(key.dropFirst(Self.seenPrefix.count))
            byProvider[provider, default: entry(provider)]["last_received"] = stored.value
        }
        for (slot, note) in refusals.withLock({ $0.filter { $0.key.install == install } }) {
            guard try await api.inboundSecret(of: install, provider: slot.provider) != nil else {
                _ = refusals.withLock { $0.removeValue(forKey: slot) }
                continue
            }
            byProvider[slot.provider, default: entry(slot.provider)]["last_refused"] = .object(note)
        }
        return .object(["data": .array(byProvider.keys.sorted().map { .object(byProvider[$0]!) })])
    }
}
