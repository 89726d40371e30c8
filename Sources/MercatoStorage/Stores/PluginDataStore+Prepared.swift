import PostgresNIO

/// A plugin write batch's statements on PostgreSQL as named prepared statements (as the command
/// path's, ``CommandStore``): parsed once per connection and kept at their generic plans. Each
/// key is looked up by its whole primary key in a lateral subquery, so a plan made while the
/// table was nearly empty still reads by index once it has grown.
extension PluginDataStore {
    /// The namespaces' byte totals and the keys' sizes and expiries, in one statement.
    static func reads(_ namespaces: Set<Namespace>, _ slots: Set<Slot>, on db: PostgresConnectionSQL) async throws
        -> ([Namespace: Int], [Slot: (size: Int, until: Int64?)]) {
        let spaces = Array(namespaces), keys = Array(slots)
        var used: [Namespace: Int] = [:]
        var sizes: [Slot: (size: Int, until: Int64?)] = [:]
        let statement = ReadsStatement(plugins: spaces.map(\.plugin), installs: spaces.map(\.install),
                                       keyPlugins: keys.map(\.namespace.plugin), keyInstalls: keys.map(\.namespace.install), keys: keys.map(\.key))
        for try await (kind, plugin, install, key, size, until) in try await db.connection.execute(statement, logger: db.logger) {
            let namespace = Namespace(plugin: plugin, install: install)
            if kind == 0 {
                used[namespace] = Int(size)
            } else {
                sizes[Slot(namespace: namespace, key: key)] = (Int(size), until)
            }
        }
        return (used, sizes)
    }

    /// Upserts `puts` (one per key); answers each key's version after it.
    static func upsert(_ puts: [Put], on db: PostgresConnectionSQL) async throws -> [(Slot, Int)] {
        var versions: [(Slot, Int)] = []
        for try await (plugin, install, key, version) in try await db.connection.execute(UpsertStatement(puts: puts), logger: db.logger) {
            versions.append((Slot(namespace: Namespace(plugin: plugin, install: install), key: key), Int(version)))
        }
        return versions
    }

    /// Rows of kind 0: a namespace's bytes (`plugin_usage`); kind 1: a stored key's size and
    /// expiry (`plugin_kv`).
    struct ReadsStatement: PostgresPreparedStatement {
        static let name = "mercato_plugin_kv_reads"
        static let sql = """
            SELECT 0, u.plugin_id, u.install_id, '', u.bytes, NULL::bigint FROM unnest($1::text[], $2::text[]) AS t(p, i)
            JOIN LATERAL (SELECT plugin_id, install_id, bytes FROM plugin_usage WHERE plugin_id = t.p AND install_id = t.i LIMIT 1) u ON true
            UNION ALL
            SELECT 1, kv.plugin_id, kv.install_id, kv.key, kv.size, kv.expires_at FROM unnest($3::text[], $4::text[], $5::text[]) AS t(p, i, k)
            JOIN LATERAL (
                SELECT plugin_id, install_id, key, size, expires_at FROM plugin_kv WHERE plugin_id = t.p AND install_id = t.i AND key = t.k LIMIT 1
            ) kv ON true
            """
        typealias Row = (Int32, String, String, String, Int64, Int64?)
        var plugins: [String]
        var installs: [String]
        var keyPlugins: [String]
        var keyInstalls: [String]
        var keys: [String]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(plugins)
            bindings.append(installs)
            bindings.append(keyPlugins)
            bindings.append(keyInstalls)
            bindings.append(keys)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// No org and no expiry travel as '' and -1 (arrays of optionals do not bind): NULL in the row.
    struct UpsertStatement: PostgresPreparedStatement {
        static let name = "mercato_plugin_kv_upsert"
        static let sql = """
            INSERT INTO plugin_kv (plugin_id, install_id, org_id, key, value, size, version, updated_at, expires_at)
            SELECT p, i, NULLIF(o, ''), k, v, s, n, u, NULLIF(e, -1)
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
                AS t(p, i, o, k, v, s, n, u, e)
            \(upsertConflict)
            """
        typealias Row = (String, String, String, Int64)
        var puts: [Put]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 9)
            bindings.append(puts.map(\.slot.namespace.plugin))
            bindings.append(puts.map(\.slot.namespace.install))
            bindings.append(puts.map { $0.org ?? "" })
            bindings.append(puts.map(\.slot.key))
            bindings.append(puts.map(\.value))
            bindings.append(puts.map { Int64($0.size) })
            bindings.append(puts.map { Int64($0.writes) })
            bindings.append(puts.map(\.at))
            bindings.append(puts.map { $0.expiresAt ?? -1 })
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}
