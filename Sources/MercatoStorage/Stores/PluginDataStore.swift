public import SQLKit

/// Rows of `plugin_kv`: every plugin's per-install data, namespaced by (plugin, install).
public enum PluginDataStore {
    /// The key's value, unless it expired before `now` (Unix milliseconds).
    public static func get(plugin: String, install: String, key: String, now: Int64, on db: any SQLDatabase) async throws -> (value: String, version: Int)? {
        guard let row = try await db.raw("""
            SELECT value, version FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install) AND key = \(bind: key)
              AND (expires_at IS NULL OR expires_at > \(bind: now))
            """).first() else { return nil }
        return (try row.decode(column: "value", as: String.self), try row.decode(column: "version", as: Int.self))
    }

    /// One write of a batch (see ``apply(_:on:)``).
    public enum Write: Sendable {
        /// Insert or replace, unless the namespace's bytes would then pass `quota`. `org` is the
        /// org the namespace belongs to, for a plugin that reads across an org's installs; nil
        /// keeps the key out of the org index (``indexByOrg(_:at:on:)``). `expiresAt` (Unix
        /// milliseconds, or nil for never) is when the key stops reading; a put over a key that
        /// had expired starts it again at version 1. With `onlyIfAbsent`, a key that holds a
        /// value that has not expired (stored, or put earlier in the batch) is left as it is
        /// and the write answers ``WriteResult/present``.
        case put(plugin: String, install: String, org: String?, key: String, value: String, quota: Int, at: Int64, expiresAt: Int64? = nil,
                 onlyIfAbsent: Bool = false)
        case delete(plugin: String, install: String, key: String)
    }

    /// What a write did.
    public enum WriteResult: Sendable, Equatable {
        /// Stored, at this version (1 for a new key).
        case stored(version: Int)
        /// Refused: the namespace's quota would have been passed.
        case overQuota
        /// Deleted; `existed` is false when there was no such key.
        case deleted(existed: Bool)
        /// Not written: the put was `onlyIfAbsent` and the key holds a value.
        case present
    }

    struct Namespace: Hashable {
        var plugin: String
        var install: String
    }

    struct Slot: Hashable {
        var namespace: Namespace
        var key: String
    }

    /// Applies `writes` in order, in the caller's transaction (or, for puts alone on
    /// PostgreSQL, on a bare connection: their one upsert commits by itself), with a few
    /// statements for the whole batch: the namespaces' byte totals and the written keys' sizes
    /// are read once (one statement on PostgreSQL), the
    /// quota is checked write by write against them, and consecutive puts go out as one
    /// multi-row upsert (a key written k times in it moves k versions). A delete runs alone.
    public static func apply(_ writes: [Write], on db: any SQLDatabase) async throws -> [WriteResult] {
        var slots = Set<Slot>()
        for write in writes {
            switch write {
            case .put(let plugin, let install, _, let key, _, _, _, _, _), .delete(let plugin, let install, let key):
                slots.insert(Slot(namespace: Namespace(plugin: plugin, install: install), key: key))
            }
        }
        // Per namespace its bytes; per stored key its size and when it expires (nil: never); a
        // put or delete in the batch updates them. One statement on PostgreSQL.
        var (used, sizes) = if let pg = db as? PostgresConnectionSQL {
            try await reads(Set(slots.map(\.namespace)), slots, on: pg)
        } else {
            (try await usedBytes(Set(slots.map(\.namespace)), on: db), try await sizes(slots, on: db))
        }
        var results = [WriteResult?](repeating: nil, count: writes.count)
        // The puts not yet sent: per key, its last value and the writes (by index) it stands for.
        var pending: [Slot: (org: String?, value: String, size: Int, at: Int64, expiresAt: Int64?, writes: [Int])] = [:]
        var order: [Slot] = []

        func flush() async throws {
            guard !order.isEmpty else { return }
            let puts = order.map { slot in
                let p = pending[slot]!
                return Put(slot: slot, org: p.org, value: p.value, size: p.size, writes: p.writes.count, at: p.at, expiresAt: p.expiresAt)
            }
            let versions = if let pg = db as? PostgresConnectionSQL { try await upsert(puts, on: pg) } else { try await upsert(puts, on: db) }
            for (slot, last) in versions {
                guard let p = pending[slot] else { continue }
                for (n, index) in p.writes.enumerated() { results[index] = .stored(version: last - p.writes.count + 1 + n) }
            }
            pending.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
        }

        for (index, write) in writes.enumerated() {
            switch write {
            case .put(let plugin, let install, let org, let key, let value, let quota, let at, let expiresAt, let onlyIfAbsent):
                let slot = Slot(namespace: Namespace(plugin: plugin, install: install), key: key)
                let stored = sizes[slot]
                if onlyIfAbsent, let stored, stored.until.map({ $0 > at }) ?? true {
                    results[index] = .present
                    continue
                }
                let size = value.utf8.count + key.utf8.count
                let others = used[slot.namespace, default: 0] - (stored?.size ?? 0)
                guard others + size <= quota else {
                    results[index] = .overQuota
                    continue
                }
                used[slot.namespace] = others + size
                sizes[slot] = (size, expiresAt)
                // One lookup for a key already pending, which then stands for one write more.
                if let known = pending.index(forKey: slot) {
                    pending.values[known].writes.append(index)
                    pending.values[known].value = value
                    pending.values[known].size = size
                    pending.values[known].at = at
                    pending.values[known].expiresAt = expiresAt
                } else {
                    order.append(slot)
                    pending[slot] = (org, value, size, at, expiresAt, [index])
                }
            case .delete(let plugin, let install, let key):
                try await flush()
                let slot = Slot(namespace: Namespace(plugin: plugin, install: install), key: key)
                let existed = try await delete(plugin: plugin, install: install, key: key, on: db)
                used[slot.namespace, default: 0] -= sizes[slot]?.size ?? 0
                sizes[slot] = nil
                results[index] = .deleted(existed: existed)
            }
        }
        try await flush()
        return try results.map { result in
            guard let result else { throw StorageError("a plugin data write was not answered by its upsert") }
            return result
        }
    }

    /// One key of a batch's upsert: its last value in the batch and how many writes it stands for.
    struct Put {
        var slot: Slot
        var org: String?
        var value: String
        var size: Int
        var writes: Int
        var at: Int64
        var expiresAt: Int64?
    }

    /// Upserts `puts` (one per key) as one multi-row statement (SQLite; PostgreSQL runs the
    /// prepared one); answers each key's version after it.
    private static func upsert(_ puts: [Put], on db: any SQLDatabase) async throws -> [(Slot, Int)] {
        var text = "INSERT INTO plugin_kv (plugin_id, install_id, org_id, key, value, size, version, updated_at, expires_at) VALUES "
        var binds: [any Encodable & Sendable] = []
        binds.reserveCapacity(9 * puts.count)
        for (n, p) in puts.enumerated() {
            text += n == 0 ? "(?, ?, ?, ?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            binds += [p.slot.namespace.plugin, p.slot.namespace.install, p.org, p.slot.key, p.value, p.size, p.writes, p.at, p.expiresAt] as [any Encodable & Sendable]
        }
        text += " " + upsertConflict
        return try await db.bound(text, binds).all().map { row in
            (Slot(namespace: Namespace(plugin: try row.decode(column: "plugin_id", as: String.self), install: try row.decode(column: "install_id", as: String.self)),
                  key: try row.decode(column: "key", as: String.self)),
             try row.decode(column: "version", as: Int.self))
        }
    }

    /// A put's row when its key exists: the new value, its version moved by the batch's writes
    /// of the key (or started again over an expired key); answers each key's last version.
    static let upsertConflict = """
        ON CONFLICT (plugin_id, install_id, key) DO UPDATE SET value = excluded.value, size = excluded.size,
            version = CASE WHEN plugin_kv.expires_at <= excluded.updated_at THEN excluded.version
                           ELSE plugin_kv.version + excluded.version END,
            updated_at = excluded.updated_at, expires_at = excluded.expires_at
        RETURNING plugin_id, install_id, key, version
        """

    /// The bytes `plugin` stores for `install` (keys and values), as the quota counts them.
    public static func storedBytes(plugin: String, install: String, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT bytes FROM plugin_usage WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install)")
            .first()?.decode(column: "bytes", as: Int.self) ?? 0
    }

    /// Bytes stored in each of `namespaces`, as `plugin_usage` counts them (kept by triggers on
    /// `plugin_kv`: one row read per namespace, whatever it holds).
    private static func usedBytes(_ namespaces: Set<Namespace>, on db: any SQLDatabase) async throws -> [Namespace: Int] {
        var text = "SELECT plugin_id, install_id, bytes AS used FROM plugin_usage WHERE "
        var binds: [any Encodable & Sendable] = []
        for (n, ns) in namespaces.enumerated() {
            text += n == 0 ? "(plugin_id = ? AND install_id = ?)" : " OR (plugin_id = ? AND install_id = ?)"
            binds += [ns.plugin, ns.install] as [any Encodable & Sendable]
        }
        var used: [Namespace: Int] = [:]
        for row in try await db.bound(text, binds).all() {
            used[Namespace(plugin: try row.decode(column: "plugin_id", as: String.self), install: try row.decode(column: "install_id", as: String.self))] =
                try row.decode(column: "used", as: Int.self)
        }
        return used
    }

    /// The stored size and expiry of each of `slots` that exists.
    private static func sizes(_ slots: Set<Slot>, on db: any SQLDatabase) async throws -> [Slot: (size: Int, until: Int64?)] {
        var text = "SELECT plugin_id, install_id, key, size, expires_at FROM plugin_kv WHERE "
        var binds: [any Encodable & Sendable] = []
        for (n, slot) in slots.enumerated() {
            text += n == 0 ? "(plugin_id = ? AND install_id = ? AND key = ?)" : " OR (plugin_id = ? AND install_id = ? AND key = ?)"
            binds += [slot.namespace.plugin, slot.namespace.install, slot.key] as [any Encodable & Sendable]
        }
        var sizes: [Slot: (size: Int, until: Int64?)] = [:]
        for row in try await db.bound(text, binds).all() {
            let slot = Slot(namespace: Namespace(plugin: try row.decode(column: "plugin_id", as: String.self),
                                                 install: try row.decode(column: "install_id", as: String.self)),
                            key: try row.decode(column: "key", as: String.self))
            sizes[slot] = (try row.decode(column: "size", as: Int.self), try row.decode(column: "expires_at", as: Int64?.self))
        }
        return sizes
    }

    public static func delete(plugin: String, install: String, key: String, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("""
            DELETE FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install) AND key = \(bind: key) RETURNING key
            """).all().isEmpty
    }

    public static func keys(plugin: String, install: String, prefix: String, after: String, limit: Int, now: Int64,
                            on db: any SQLDatabase) async throws -> [String] {
        try await db.raw("""
            SELECT key FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND install_id = \(bind: install)
              AND key > \(bind: after) AND key LIKE \(bind: AppStore.likeEscaped(prefix) + "%") ESCAPE '\\'
              AND (expires_at IS NULL OR expires_at > \(bind: now))
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

    /// Removes up to `limit` keys that expired before `now`; answers how many.
    public static func expire(before now: Int64, limit: Int, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("""
            DELETE FROM plugin_kv WHERE (plugin_id, install_id, key) IN (
                SELECT plugin_id, install_id, key FROM plugin_kv WHERE expires_at <= \(bind: now) LIMIT \(bind: limit))
            RETURNING key
            """).all().count
    }

    public static func count(install: String, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM plugin_kv WHERE install_id = \(bind: install)").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Makes the org index follow `plugins`, the plugins that read across an org: the keys of
    /// one that was not indexed get their org (its own namespace's keys, the org they are
    /// named by), and one no longer listed is forgotten (its keys written from now on stay out
    /// of the index). Answers the plugins whose keys were filled in. Run at start; cheap when
    /// nothing changed (one read of a small table).
    @discardableResult
    public static func indexByOrg(_ plugins: Set<String>, at now: Int64, on db: any SQLDatabase) async throws -> [String] {
        let indexed = Set(try await db.raw("SELECT plugin_id FROM plugin_org_index").all().map { try $0.decode(column: "plugin_id", as: String.self) })
        for gone in indexed.subtracting(plugins).sorted() {
            try await db.raw("DELETE FROM plugin_org_index WHERE plugin_id = \(bind: gone)").run()
        }
        let added = plugins.subtracting(indexed).sorted()
        for plugin in added {
            try await db.raw("""
                UPDATE plugin_kv SET org_id = COALESCE((SELECT org_id FROM installs WHERE installs.id = plugin_kv.install_id),
                                                       (SELECT id FROM orgs WHERE orgs.id = plugin_kv.install_id))
                WHERE plugin_id = \(bind: plugin) AND org_id IS NULL
                """).run()
            try await db.raw("INSERT INTO plugin_org_index (plugin_id, indexed_at) VALUES (\(bind: plugin), \(bind: now)) ON CONFLICT (plugin_id) DO NOTHING").run()
        }
        return added
    }

    /// A row of `plugin_kv` read across an org.
    public struct OrgRow: Sendable {
        public var install: String
        public var key: String
        public var value: String
        public var version: Int
    }

    /// `plugin`'s rows under `prefix` in every namespace of `org`, by key, past `after`.
    public static func orgEntries(plugin: String, org: String, prefix: String, after: String?, limit: Int, descending: Bool, now: Int64,
                                  on db: any SQLDatabase) async throws -> [OrgRow] {
        let past: SQLQueryString = after.map { descending ? "AND key < \(bind: $0)" : "AND key > \(bind: $0)" } ?? ""
        return try await db.raw("""
            SELECT install_id, key, value, version FROM plugin_kv
            WHERE plugin_id = \(bind: plugin) AND org_id = \(bind: org) AND key LIKE \(bind: AppStore.likeEscaped(prefix) + "%") ESCAPE '\\' \(past)
              AND (expires_at IS NULL OR expires_at > \(bind: now))
            ORDER BY key \(unsafeRaw: descending ? "DESC" : "ASC") LIMIT \(bind: limit)
            """).all().map(Self.orgRow)
    }

    /// The first row of `plugin` with exactly `key` in any namespace of `org`.
    public static func orgFind(plugin: String, org: String, key: String, now: Int64, on db: any SQLDatabase) async throws -> OrgRow? {
        try await db.raw("""
            SELECT install_id, key, value, version FROM plugin_kv WHERE plugin_id = \(bind: plugin) AND org_id = \(bind: org) AND key = \(bind: key)
              AND (expires_at IS NULL OR expires_at > \(bind: now))
            ORDER BY install_id LIMIT 1
            """).first().map(Self.orgRow)
    }

    private static func orgRow(_ row: any SQLRow) throws -> OrgRow {
        OrgRow(install: try row.decode(column: "install_id", as: String.self), key: try row.decode(column: "key", as: String.self),
               value: try row.decode(column: "value", as: String.self), version: try row.decode(column: "version", as: Int.self))
    }
}
