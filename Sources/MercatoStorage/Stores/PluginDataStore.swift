public import SQLKit

/// Rows of `plugin_kv`: every plugin's per-install data, namespaced by (plugin, install).
public enum PluginDataStore {
    public static func get(plugin: String, install: String, key: String, on db: any SQLDatabase) async throws -> (value: String, version: Int)? {
        guard let row = try await db.raw("""
            SELECT value, version FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install) AND key = \(bind: key)
            """).first() else { return nil }
        return (try row.decode(column: "value", as: String.self), try row.decode(column: "version", as: Int.self))
    }

    /// Inserts or replaces, as one statement, unless the namespace's bytes would then pass
    /// `quota` (every other key's size plus this one's); answers the new version, or `nil` when
    /// the quota refused the write. `org` is the org the namespace belongs to (for reads across
    /// an org's installs).
    public static func put(plugin: String, install: String, org: String, key: String, value: String, quota: Int,
                           at millis: Int64, on db: any SQLDatabase) async throws -> Int? {
        let size = value.utf8.count + key.utf8.count
        let row = try await db.raw("""
            INSERT INTO plugin_kv (plugin_id, install_id, org_id, key, value, size, version, updated_at)
            SELECT \(bind: plugin), \(bind: install), \(bind: org), \(bind: key), \(bind: value), \(bind: size), 1, \(bind: millis)
            WHERE (SELECT COALESCE(SUM(size), 0) FROM plugin_kv
                   WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install) AND key <> \(bind: key)) + \(bind: size) <= \(bind: quota)
            ON CONFLICT (plugin_id, install_id, key) DO UPDATE SET value = excluded.value, size = excluded.size,
                version = plugin_kv.version + 1, updated_at = excluded.updated_at
            RETURNING version
            """).first()
        return try row?.decode(column: "version", as: Int.self)
    }

    public static func delete(plugin: String, install: String, key: String, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("""
            DELETE FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install) AND key = \(bind: key) RETURNING key
            """).all().isEmpty
    }

    public static func keys(plugin: String, install: String, prefix: String, after: String, limit: Int, on db: any SQLDatabase) async throws -> [String] {
        try await db.raw("""
            SELECT key FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install)
              AND key > \(bind: after) AND key LIKE \(bind: AppStore.likeEscaped(prefix) + "%") ESCAPE '\\'
            ORDER BY key LIMIT \(bind: limit)
            """).all().map { try $0.decode(column: "key", as: String.self) }
    }

    /// Everything `plugin` keeps for `install` (or every plugin's, when `plugin` is nil).
    @discardableResult
    public static func deleteAll(plugin: String?, install: String, on db: any SQLDatabase) async throws -> Int {
        if let plugin {
            return try await db.raw("DELETE FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install) RETURNING key").all().count
        }
        return try await db.raw("DELETE FROM plugin_kv WHERE install_id = \(bind: install) RETURNING key").all().count
    }

    public static func count(install: String, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM plugin_kv WHERE install_id = \(bind: install)").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// A row of `plugin_kv` read across an org.
    public struct OrgRow: Sendable {
        public var install: String
        public var key: String
        public var value: String
        public var version: Int
    }

    /// `plugin`'s rows under `prefix` in every namespace of `org`, by key, past `after`.
    public static func orgEntries(plugin: String, org: String, prefix: String, after: String?, limit: Int, descending: Bool,
                                  on db: any SQLDatabase) async throws -> [OrgRow] {
        let past: SQLQueryString = after.map { descending ? "AND key < \(bind: $0)" : "AND key > \(bind: $0)" } ?? ""
        return try await db.raw("""
            SELECT install_id, key, value, version FROM plugin_kv
            WHERE plugin_id = \(bind: plugin) AND org_id = \(bind: org) AND key LIKE \(bind: AppStore.likeEscaped(prefix) + "%") ESCAPE '\\' \(past)
            ORDER BY key \(unsafeRaw: descending ? "DESC" : "ASC") LIMIT \(bind: limit)
            """).all().map(Self.orgRow)
    }

    /// The first row of `plugin` with exactly `key` in any namespace of `org`.
    public static func orgFind(plugin: String, org: String, key: String, on db: any SQLDatabase) async throws -> OrgRow? {
        try await db.raw("""
            SELECT install_id, key, value, version FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND org_id = \(bind: org) AND key = \(bind: key)
            ORDER BY install_id LIMIT 1
            """).first().map(Self.orgRow)
    }

    private static func orgRow(_ row: any SQLRow) throws -> OrgRow {
        OrgRow(install: try row.decode(column: "install_id", as: String.self), key: try row.decode(column: "key", as: String.self),
               value: try row.decode(column: "value", as: String.self), version: try row.decode(column: "version", as: Int.self))
    }
}
