public import Foundation

/// A plugin's key-value storage for one namespace (an install, or an org's own), with a size
/// quota kept by the host.
///
/// The host binds it to (plugin, namespace): keys of other plugins and other installs are out
/// of reach. See <doc:Storage>.
public protocol PluginStorage: Sendable {
    /// The value and its version, `nil` when absent.
    func get(_ key: String) async throws -> StoredValue?
    /// Writes `value`; answers the new version (1 for a new key, or for a key whose previous
    /// value had expired). With `expiresAt`, the key reads as absent from that time on and the
    /// host removes it soon after (within minutes; until then it still counts against the
    /// quota); `nil` keeps it until deleted, and clears an earlier expiry. Throws
    /// ``CommandError`` 413 `quota_exceeded` when the install's quota would be passed.
    func set(_ key: String, _ value: JSONValue, expiresAt: Date?) async throws -> Int
    /// Writes `value` (version 1) only if `key` holds nothing (absent, or expired), and in the
    /// same transaction puts `events` in the outbox for this namespace's install, as
    /// ``PluginAPI/emit(_:for:)`` would: the key and its events commit together or not at all,
    /// so a plugin that records "seen" and announces it cannot do one without the other.
    /// Answers `false`, writing and emitting nothing, when the key already holds a value (a
    /// concurrent call with the same key: only one of them writes). Emitting from an org's own
    /// namespace, which has no install, throws ``CommandError`` 400.
    func create(_ key: String, _ value: JSONValue, expiresAt: Date?, emitting events: [EventDraft]) async throws -> Bool
    /// `true` when the key existed.
    func delete(_ key: String) async throws -> Bool
    /// Keys starting with `prefix`, after `after`, in order, at most `limit`.
    func keys(prefix: String, after: String?, limit: Int) async throws -> [String]
    /// Drops everything of this plugin for this install.
    func deleteAll() async throws
}

extension PluginStorage {
    /// Writes `value`, kept until deleted (see ``set(_:_:expiresAt:)``).
    public func set(_ key: String, _ value: JSONValue) async throws -> Int {
        try await set(key, value, expiresAt: nil)
    }
}

/// A stored value and its version (grows by one per write).
public struct StoredValue: Sendable, Equatable {
    /// The value as written.
    public var value: JSONValue
    /// 1 after the first write of the key, one more after each write since.
    public var version: Int

    /// A value at a version, as storage answers it.
    public init(value: JSONValue, version: Int) {
        self.value = value
        self.version = version
    }
}
