import Foundation
public import MercatoHooks
public import MercatoStorage

/// ``PluginStorage`` over `plugin_kv`, bound by the host to one plugin and one install, with a
/// byte quota per (plugin, install).
public struct HostPluginStorage: PluginStorage {
    let database: Database
    let plugin: String
    let install: String
    let quotaBytes: Int
    let clock: WallClock

    /// The default quota: 10 MiB per plugin per install.
    public static let defaultQuota = 10 * 1024 * 1024

    public init(database: Database, plugin: String, install: String, quotaBytes: Int = defaultQuota, clock: WallClock) {
        self.database = database
        self.plugin = plugin
        self.install = install
        self.quotaBytes = quotaBytes
        self.clock = clock
    }

    public func get(_ key: String) async throws -> StoredValue? {
        guard let row = try await database.read({ try await PluginDataStore.get(plugin: plugin, install: install, key: key, on: $0) }) else { return nil }
        return StoredValue(value: try JSONDecoder().decode(JSONValue.self, from: Data(row.value.utf8)), version: row.version)
    }

    public func set(_ key: String, _ value: JSONValue) async throws -> Int {
        let text = try InstallService.json(value)
        return try await database.transaction { db in
            let used = try await PluginDataStore.usedBytes(plugin: plugin, install: install, excluding: key, on: db)
            if used + text.utf8.count + key.utf8.count > quotaBytes {
                throw CommandError(status: 413, code: "quota_exceeded",
                                   message: "This install's storage is full (\(quotaBytes / 1024) KiB); delete keys first.")
            }
            return try await PluginDataStore.put(plugin: plugin, install: install, key: key, value: text, at: clock.millis, on: db)
        }
    }

    public func delete(_ key: String) async throws -> Bool {
        try await database.transaction { try await PluginDataStore.delete(plugin: plugin, install: install, key: key, on: $0) }
    }

    public func keys(prefix: String, after: String?, limit: Int) async throws -> [String] {
        try await database.read { try await PluginDataStore.keys(plugin: plugin, install: install, prefix: prefix, after: after ?? "", limit: limit, on: $0) }
    }

    public func deleteAll() async throws {
        try await database.transaction { _ = try await PluginDataStore.deleteAll(plugin: plugin, install: install, on: $0) }
    }
}
