import Foundation
@testable import MercatoStorage
import MercatoTestSupport
import Logging
import NIOCore
import PostgresNIO
import SQLKit
import Testing

@Suite("Statements: values round-trip, SQLite's prepared-statement cache")
struct StatementTests {
    struct Values: Codable, Equatable {
        var t: String?
        var b: Data?
        var i: Int64?
        var f: Double?
    }

    /// Edge values come back as they went in, on both engines: an empty string and an empty
    /// blob are not NULL, text keeps non-ASCII, integers keep all 64 bits.
    @Test(arguments: TestEngines.all)
    func valuesRoundTrip(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let blob = engine == .sqlite ? "BLOB" : "BYTEA"
            let cases: [Values] = [
                Values(t: "", b: Data(), i: 0, f: 0),
                Values(t: "a b ünï 🧪", b: Data([0, 1, 2, 255]), i: Int64.max, f: -1.5),
                Values(t: nil, b: nil, i: Int64.min, f: nil),
                Values(t: "x", b: nil, i: nil, f: 2),
            ]
            try await test.database.transaction { db in
                try await db.raw("CREATE TABLE stmt_values (n INTEGER, t TEXT, b \(unsafeRaw: blob), i BIGINT, f DOUBLE PRECISION)").run()
                for (n, value) in cases.enumerated() {
                    try await db.raw("INSERT INTO stmt_values (n, t, b, i, f) VALUES (\(bind: n), \(bind: value.t), \(bind: value.b), \(bind: value.i), \(bind: value.f))").run()
                }
            }
            let rows = try await test.database.read { db in
                try await db.raw("SELECT t, b, i, f, t IS NULL AS t_null, b IS NULL AS b_null FROM stmt_values ORDER BY n").all()
            }
            #expect(try rows.map { try $0.decode(model: Values.self) } == cases)
            #expect(try rows.map { try $0.decode(column: "t_null", as: Bool.self) } == [false, false, true, false])
            #expect(try rows.map { try $0.decode(column: "b_null", as: Bool.self) } == [false, false, true, true])
            // Nullable columns read one by one as Optionals.
            #expect(try rows.map { try $0.decode(column: "t", as: String?.self) } == cases.map(\.t))
            #expect(try rows.map { try $0.decode(column: "i", as: Int64?.self) } == cases.map(\.i))
        }
    }

    /// SQLite keeps no memory statistics in this process: counting them takes one global mutex
    /// at every allocation and free inside SQLite, which the request threads and the writer
    /// queued on (two futex calls a request under load).
    @Test func sqliteCountsNoMemoryStatistics() async throws {
        try await withTestDatabase(.sqlite) { test async throws in
            let rows = try await test.database.read { db in try await db.raw("SELECT 1 AS n").all() }
            #expect(rows.count == 1)
            #expect(CachedSQLiteConnection.processConfiguration == 0)
            #expect(CachedSQLiteConnection.memoryCounted == 0)
        }
    }

    /// A statement run again is not parsed again: the connection's cache answers it, with
    /// fresh bindings each time (a stale binding would return the previous row).
    @Test func sqliteParsesAStatementOncePerConnection() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mercato-stmt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let connection = try CachedSQLiteConnection(path: dir.appendingPathComponent("s.sqlite").path, pragmas: [])
        let db = SQLiteSQLDatabase.on(connection, logger: TestDatabase.logger)
        try await db.raw("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)").run()
        for k in 0 ..< 10 { try await db.raw("INSERT INTO t (k, v) VALUES (\(bind: k), \(bind: "v\(k)"))").run() }
        let before = connection.prepareCount
        var seen: [String] = []
        for k in [3, 7, 3, 11] {
            let v = try await db.raw("SELECT v FROM t WHERE k = \(bind: k)").first()?.decode(column: "v", as: String.self)
            seen.append(v ?? "none")
        }
        #expect(seen == ["v3", "v7", "v3", "none"])
        #expect(connection.prepareCount == before + 1)
        // A failing statement leaves the connection usable.
        await #expect(throws: SQLiteFailure.self) { try await db.raw("INSERT INTO t (k, v) VALUES (\(bind: 3), \(bind: "dup"))").run() }
        #expect(try await db.raw("SELECT count(*) AS n FROM t").first()?.decode(column: "n", as: Int.self) == 10)
        // The result's column names are kept with the statement until SQLite prepares it again:
        // after a schema change the same text answers with the new names.
        #expect(try await db.raw("SELECT * FROM t WHERE k = 1").first()?.allColumns == ["k", "v"])
        try await db.raw("ALTER TABLE t RENAME COLUMN v TO w").run()
        #expect(try await db.raw("SELECT * FROM t WHERE k = 1").first()?.decode(column: "w", as: String.self) == "v1")
        connection.close()
    }
    /// A ``BoundSQL`` binds its values in order on both engines (SQLite takes its text as it is,
    /// PostgreSQL gets `$n` for each `?`), with several rows, NULLs and text after the last `?`.
    @Test(arguments: TestEngines.all)
    func boundStatementsBindInOrder(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            try await test.database.transaction { db in
                try await db.raw("CREATE TABLE stmt_bound (n BIGINT PRIMARY KEY, t TEXT, i BIGINT)").run()
                try await MultiRowInsert.run(into: "stmt_bound", columns: "n, t, i",
                                             rows: [[Int64(1), "one", Int64(10)], [Int64(2), String?.none, Int64(20)], [Int64(3), "three", Int64?.none]],
                                             suffix: "ON CONFLICT (n) DO NOTHING", on: db)
                try await MultiRowInsert.run(into: "stmt_bound", columns: "n, t, i", rows: [[Int64(1), "again", Int64(99)]],
                                             suffix: "ON CONFLICT (n) DO NOTHING", on: db)
            }
            let rows = try await test.database.read { db in
                try await db.bound("SELECT n, t, i FROM stmt_bound WHERE n >= ? AND n <= ? ORDER BY n", [Int64(1), Int64(3)]).all()
            }
            #expect(try rows.map { try $0.decode(column: "t", as: String?.self) } == ["one", nil, "three"])
            #expect(try rows.map { try $0.decode(column: "i", as: Int64?.self) } == [10, 20, nil])
            let second = try await test.database.read { db in
                try await db.bound("SELECT t FROM stmt_bound WHERE i = ? AND n = ?", [Int64(20), Int64(2)]).first()
            }
            #expect(try second?.decodeNil(column: "t") == true)
        }
    }

    /// How PostgreSQL (or any dialect but SQLite's fast path) gets a ``BoundSQL``: each `?` its
    /// placeholder, in order, and the values bound in that order.
    @Test func boundStatementsSerializeForPostgres() throws {
        let db = SQLiteSQLDatabase.on(try CachedSQLiteConnection(path: ":memory:", pragmas: []), logger: TestDatabase.logger)
        var serializer = SQLSerializer(database: PostgresDialectProbe(base: db))
        BoundSQL("SELECT a FROM t WHERE x = ? AND y IN (?, ?) LIMIT 1", ["x", Int64(2), "z"]).serialize(to: &serializer)
        #expect(serializer.sql == "SELECT a FROM t WHERE x = $1 AND y IN ($2, $3) LIMIT 1")
        #expect(serializer.binds.count == 3)
        #expect(serializer.binds[0] as? String == "x" && serializer.binds[1] as? Int64 == 2 && serializer.binds[2] as? String == "z")
        var bare = SQLSerializer(database: PostgresDialectProbe(base: db))
        BoundSQL("COMMIT").serialize(to: &bare)
        #expect(bare.sql == "COMMIT" && bare.binds.isEmpty)
    }
}

/// A database that serializes as PostgreSQL does (`$n` placeholders); it runs nothing.
private struct PostgresDialectProbe: SQLDatabase {
    let base: SQLiteSQLDatabase
    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var dialect: any SQLDialect { Dialect() }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        eventLoop.makeFailedFuture(StorageError("a probe runs nothing"))
    }

    struct Dialect: SQLDialect {
        var name: String { "postgresql" }
        var identifierQuote: any SQLExpression { SQLRaw("\"") }
        var literalStringQuote: any SQLExpression { SQLRaw("'") }
        var supportsAutoIncrement: Bool { false }
        var autoIncrementClause: any SQLExpression { SQLRaw("") }
        func bindPlaceholder(at position: Int) -> any SQLExpression { SQLRaw("$\(position)") }
        func literalBoolean(_ value: Bool) -> any SQLExpression { SQLRaw(value ? "true" : "false") }
    }
}

extension StatementTests {
    /// The hot reads (``PreparedText``) answer alike on both engines; on PostgreSQL each is a
    /// named prepared statement kept on the connection, parsed there once, not an unnamed
    /// statement parsed and planned at every call.
    @Test(arguments: TestEngines.all)
    func hotReadsArePreparedOnPostgreSQL(engine: StorageEngine) async throws {
        #expect(LiveTokenRead.numbered("a = ? AND b IN (?, ?)") == "a = $1 AND b IN ($2, $3)")
        #expect(LiveTokenRead.numbered("no values") == "no values")
        // A batch of one token's hits in one window is one statement (no transaction on PostgreSQL).
        let a = TokenUsageStore.Hit(tokenID: "tok_a", window: 1)
        #expect(TokenUsageStore.oneCounter([a, a]))
        #expect(!TokenUsageStore.oneCounter([a, TokenUsageStore.Hit(tokenID: "tok_b", window: 1)]))
        #expect(!TokenUsageStore.oneCounter([a, TokenUsageStore.Hit(tokenID: "tok_a", window: 2)]))
        try await withTestDatabase(engine) { test async throws in
            try await test.database.transaction { db in
                try await OrgStore.insert(OrgRecord(id: "org_prep", name: "Prep", plan: "pro", createdAt: 1), on: db)
                try await db.raw("INSERT INTO principals (id, kind, name, created_at) VALUES ('usr_prep', 'user', 'Prep', 1)").run()
                try await AccessStore.insert(TokenRecord(id: "tok_prep", orgId: "org_prep", principalId: "usr_prep", role: "admin", name: "t",
                                                         tokenHash: "hash_prep", createdAt: 1), on: db)
            }
            // In one transaction: one connection, whose prepared statements can be listed.
            let (first, again, missing, counts, statements) = try await test.database.transaction { db in
                let first = try await AccessStore.liveToken(hash: "hash_prep", on: db)
                let again = try await AccessStore.liveToken(hash: "hash_prep", on: db)
                let missing = try await AccessStore.liveToken(hash: "hash_other", on: db)
                _ = try await InstallStore.live(id: "ins_none", on: db)
                _ = try await SealedValueStore.all(owner: "ins_none", on: db)
                _ = try await InstallStore.liveWithSealed(id: "ins_none", on: db)
                try await TokenUsageStore.record([TokenUsageRecord(id: "tku_prep", tokenId: "tok_prep", at: 5, method: "GET", path: "/p", status: 200,
                                                                   requestId: "req_prep")], on: db)
                let hit = TokenUsageStore.Hit(tokenID: "tok_prep", window: 7)
                let counts = try await TokenUsageStore.count([hit], on: db) + TokenUsageStore.count([hit, hit], on: db)
                let statements = engine == .postgres
                    ? try await db.raw("SELECT name FROM pg_prepared_statements WHERE name LIKE 'mercato_%'").all().map { try $0.decode(column: "name", as: String.self) }
                    : []
                return (first, again, missing, counts, statements)
            }
            #expect(first?.token.id == "tok_prep" && first?.plan == "pro" && first?.token.role == "admin")
            #expect(again?.token.id == "tok_prep")
            #expect(missing == nil)
            #expect(counts == [1, 2, 3], "a token's hourly places")
            if engine == .postgres {
                #expect(Set(statements).isSuperset(of: ["mercato_live_token", "mercato_live_install", "mercato_sealed_values_of_owner",
                                                        "mercato_count_token_hits", "mercato_live_install_sealed", "mercato_insert_token_usage",
                                                        "mercato_touch_token"]), "prepared on this connection: \(statements)")
            }
        }
    }
}

extension StatementTests {
    /// Every PostgreSQL prepared statement of the stores names itself: PostgresNIO's default name
    /// (`String(reflecting:)` of the type, `MercatoStorage.…`) is built again at every execution.
    @Test func preparedStatementsNameThemselves() {
        let names = [PluginDataStore.ReadsStatement.name, PluginDataStore.UpsertStatement.name, CommandStore.AnsweredStatement.name,
                     CommandStore.RateClaimStatement.name, TokenUsageStore.InsertUsage.name, CommandStore.ChecksStatement.name,
                     CommandStore.StampStatement.name, CommandStore.RoundStatement.name]
        #expect(names.allSatisfy { $0.hasPrefix("mercato_") && !$0.contains(".") }, "\(names)")
        #expect(Set(names).count == names.count, "two statements under one name: \(names)")
    }

    /// An install and every value sealed for it come back from one statement: none, several in
    /// purpose order, nothing for an uninstalled or unknown install, never another owner's.
    @Test(arguments: TestEngines.all)
    func anInstallIsReadWithItsSealedValues(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            try await test.database.transaction { db in
                try await db.raw("INSERT INTO orgs (id, name, plan, created_at) VALUES ('org_1', 'Acme', 'pro', 1)").run()
                for (id, removed) in [("ins_a", nil), ("ins_b", nil), ("ins_gone", Int64(9))] as [(String, Int64?)] {
                    // An org installs an app once: an app each.
                    try await db.raw("""
                        INSERT INTO apps (id, key, developer_org_id, status, latest_version, name, plan, search_text, created_at, updated_at)
                        VALUES (\(bind: "app_" + id), \(bind: "app-" + id), 'org_1', 'published', '1.0.0', 'Sealed', 'free', 'sealed', 1, 1)
                        """).run()
                    try await InstallStore.insert(InstallRecord(id: id, orgId: "org_1", appId: "app_" + id, appKey: "app-" + id, version: "1.0.0", status: .active,
                                                                scopes: ["kv:read"], configKeys: ["url", "key"], createdBy: "usr_1", createdAt: 1, updatedAt: 2,
                                                                removedAt: removed), on: db)
                }
                for (n, (owner, purpose)) in [("ins_a", "config.url"), ("ins_a", "config.key"), ("ins_gone", "config.url"), ("ins_c", "config.url")].enumerated() {
                    try await SealedValueStore.upsert(SealedValueRecord(id: "sv_\(n)", orgId: "org_1", ownerId: owner, purpose: purpose, keyVersion: 1,
                                                                        revision: 1, ciphertext: "c\(n)", createdAt: 3, updatedAt: 4), on: db)
                }
            }
            let (a, b, gone, none) = try await test.database.read { db in
                (try await InstallStore.liveWithSealed(id: "ins_a", on: db), try await InstallStore.liveWithSealed(id: "ins_b", on: db),
                 try await InstallStore.liveWithSealed(id: "ins_gone", on: db), try await InstallStore.liveWithSealed(id: "ins_c", on: db))
            }
            let live = try await test.database.read { try await InstallStore.live(id: "ins_a", on: $0) }
            #expect(a?.0 == live && a?.0.configKeys == ["url", "key"])
            #expect(a?.1.map(\.purpose) == ["config.key", "config.url"])
            #expect(a?.1.map(\.ciphertext) == ["c1", "c0"] && a?.1.allSatisfy { $0.ownerId == "ins_a" && $0.revision == 1 && $0.updatedAt == 4 } == true)
            #expect(b?.0.id == "ins_b" && b?.1.isEmpty == true)
            #expect(gone == nil, "an uninstalled install is not live")
            #expect(none == nil, "values with no install")
            // A page's values in one statement per 500 owners: owners on both sides of a chunk's edge.
            let owners = (0 ..< 1_200).map { "ins_pad_\($0)" }.enumerated().map { n, id in n == 3 ? "ins_a" : n == 700 ? "ins_c" : n == 1_100 ? "ins_b" : id }
            let byOwner = try await test.database.read { try await SealedValueStore.all(owners: owners, on: $0) }
            #expect(Set(byOwner.keys) == ["ins_a", "ins_c"])
            #expect(byOwner["ins_a"]?.map(\.purpose) == ["config.key", "config.url"] && byOwner["ins_c"]?.map(\.ciphertext) == ["c3"])
            #expect(try await test.database.read { try await SealedValueStore.all(owners: [], on: $0) }.isEmpty)
        }
    }

    /// A batch of usage rows lands whole, and each token's `last_used_at` moves to its latest
    /// request, never back.
    @Test(arguments: TestEngines.all)
    func usageRowsAndLastUseAreWrittenByBatch(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            try await test.database.transaction { db in
                try await OrgStore.insert(OrgRecord(id: "org_u", name: "U", plan: "pro", createdAt: 1), on: db)
                try await db.raw("INSERT INTO principals (id, kind, name, created_at) VALUES ('usr_u', 'user', 'U', 1)").run()
                for token in ["tok_a", "tok_b"] {
                    try await AccessStore.insert(TokenRecord(id: token, orgId: "org_u", principalId: "usr_u", role: "admin", name: token,
                                                             tokenHash: "hash_\(token)", createdAt: 1), on: db)
                }
            }
            func row(_ n: Int, _ token: String, at: Int64) -> TokenUsageRecord {
                TokenUsageRecord(id: "tku_\(n)", tokenId: token, at: at, method: n % 2 == 0 ? "GET" : "POST", path: "/api/v1/x/\(n)", status: 200 + n, requestId: "req_\(n)")
            }
            let first = [row(1, "tok_a", at: 50), row(2, "tok_b", at: 70), row(3, "tok_a", at: 60)], later = [row(4, "tok_a", at: 40)]
            try await test.database.transaction { try await TokenUsageStore.record(first, on: $0) }
            try await test.database.transaction { try await TokenUsageStore.record(later, on: $0) }
            let (a, b, lastA, lastB) = try await test.database.read { db in
                (try await TokenUsageStore.usage(token: "tok_a", before: nil, limit: 10, on: db), try await TokenUsageStore.usage(token: "tok_b", before: nil, limit: 10, on: db),
                 try await db.raw("SELECT last_used_at FROM api_tokens WHERE id = 'tok_a'").first()?.decode(column: "last_used_at", as: Int64?.self),
                 try await db.raw("SELECT last_used_at FROM api_tokens WHERE id = 'tok_b'").first()?.decode(column: "last_used_at", as: Int64?.self))
            }
            #expect(a == [row(4, "tok_a", at: 40), row(3, "tok_a", at: 60), row(1, "tok_a", at: 50)])
            #expect(b == [row(2, "tok_b", at: 70)])
            #expect(lastA == 60, "a later batch's older request does not move it back")
            #expect(lastB == 70)
        }
    }
}
