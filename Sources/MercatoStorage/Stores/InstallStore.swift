import Foundation
public import SQLKit

/// An app installed in an org. Config values are not here: each is sealed in `sealed_values`
/// (owner = install id, purpose = `config.{key}`); `configKeys` lists which are set.
public struct InstallRecord: Sendable, Codable, Equatable {
    public var id: String
    public var orgId: String
    public var appId: String
    public var appKey: String
    public var version: String
    public var status: InstallStatus
    /// The scopes granted to the app (those its installed version asks for).
    public var scopes: [String]
    /// The config keys that hold a value.
    public var configKeys: [String]
    public var createdBy: String
    public var createdAt: Int64
    public var updatedAt: Int64
    public var removedAt: Int64?

    public init(id: String, orgId: String, appId: String, appKey: String, version: String, status: InstallStatus, scopes: [String],
                configKeys: [String], createdBy: String, createdAt: Int64, updatedAt: Int64, removedAt: Int64? = nil) {
        self.id = id
        self.orgId = orgId
        self.appId = appId
        self.appKey = appKey
        self.version = version
        self.status = status
        self.scopes = scopes
        self.configKeys = configKeys
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.removedAt = removedAt
    }
}

/// Where an install is in its lifecycle (`InstallService` owns every move between them).
public enum InstallStatus: String, Sendable, Codable, CaseIterable {
    /// Commands run, events flow.
    case active
    /// Turned off by an admin: commands answer 403 `install_inactive`; config is kept.
    case disabled
    /// Its app needs an outside account that is not (or no longer) connected.
    case pendingOAuth = "pending_oauth"
    /// Removed: config and tokens destroyed, the row kept for the audit trail and the logs.
    case uninstalled

    init(stored text: String) throws {
        guard let status = InstallStatus(rawValue: text) else { throw StorageError("installs.status holds an unknown status") }
        self = status
    }
}

extension InstallRecord {
    /// Decodes a row of ``InstallStore/columns`` by column name (no `Codable` key conversion:
    /// this row is read on hot paths).
    init(row: any SQLRow) throws {
        self.init(id: try row.decode(column: "id", as: String.self), orgId: try row.decode(column: "org_id", as: String.self),
                  appId: try row.decode(column: "app_id", as: String.self), appKey: try row.decode(column: "app_key", as: String.self),
                  version: try row.decode(column: "version", as: String.self), status: try InstallStatus(stored: try row.decode(column: "status", as: String.self)),
                  scopes: try StoredList.decode(try row.decode(column: "scopes", as: String.self)),
                  configKeys: try StoredList.decode(try row.decode(column: "config_keys", as: String.self)),
                  createdBy: try row.decode(column: "created_by", as: String.self), createdAt: try row.decode(column: "created_at", as: Int64.self),
                  updatedAt: try row.decode(column: "updated_at", as: Int64.self), removedAt: try row.decode(column: "removed_at", as: Int64?.self))
    }
}

/// Rows of `installs`.
public enum InstallStore {
    static let columns = "id, org_id, app_id, app_key, version, status, scopes, config_keys, created_by, created_at, updated_at, removed_at"

    public static func insert(_ i: InstallRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO installs (\(unsafeRaw: columns)) VALUES (\(bind: i.id), \(bind: i.orgId), \(bind: i.appId), \(bind: i.appKey), \(bind: i.version),
                \(bind: i.status.rawValue), \(bind: StoredList.text(i.scopes)), \(bind: StoredList.text(i.configKeys)), \(bind: i.createdBy), \(bind: i.createdAt), \(bind: i.updatedAt), \(bind: i.removedAt))
            """).run()
    }

    public static func update(_ i: InstallRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE installs SET version = \(bind: i.version), status = \(bind: i.status.rawValue), scopes = \(bind: StoredList.text(i.scopes)),
                config_keys = \(bind: StoredList.text(i.configKeys)), updated_at = \(bind: i.updatedAt), removed_at = \(bind: i.removedAt)
            WHERE id = \(bind: i.id)
            """).run()
    }

    /// A live (not uninstalled) install; `forUpdate` locks the row on PostgreSQL.
    private static let liveStatement = "SELECT \(columns) FROM installs WHERE id = ? AND removed_at IS NULL"

    public static func live(id: String, on db: any SQLDatabase, forUpdate: Bool = false) async throws -> InstallRecord? {
        guard forUpdate && db.dialect.name == "postgresql" else {
            return try await db.prepared(LiveInstallRead.self, [id]).first.map(InstallRecord.init(row:))
        }
        return try await db.bound(liveStatement + " FOR UPDATE", [id]).first().map(InstallRecord.init(row:))
    }

    /// ``live(id:on:forUpdate:)``'s read: an install's page, its API and its app's config reads.
    enum LiveInstallRead: PreparedText {
        static let text = liveStatement
        static let name = "mercato_live_install"
        static let postgres = numbered(text)
    }

    /// A live install with every value sealed for it (its config), in one statement: the
    /// install's API read and the app's config read pay one round trip, not two.
    public static func liveWithSealed(id: String, on db: any SQLDatabase) async throws -> (InstallRecord, [SealedValueRecord])? {
        let rows = try await db.prepared(LiveInstallSealedRead.self, [id])
        guard let first = rows.first else { return nil }
        let install = try InstallRecord(row: first)
        var sealed: [SealedValueRecord] = []
        for row in rows where try row.decode(column: "s_id", as: String?.self) != nil {
            sealed.append(try SealedValueRecord(row: row, prefix: "s_"))
        }
        return (install, sealed)
    }

    /// ``liveWithSealed(id:on:)``'s read: the install's columns, then the sealed value's as
    /// `s_…` (none, as NULLs, when nothing is sealed for it), ordered by purpose.
    enum LiveInstallSealedRead: PreparedText {
        static let text: String = """
            SELECT \(installColumns), \(sealedColumns) FROM installs i LEFT JOIN sealed_values s ON s.owner_id = i.id
            WHERE i.id = ? AND i.removed_at IS NULL ORDER BY s.purpose
            """
        private static let installColumns = names(columns).map { "i.\($0)" }.joined(separator: ", ")
        private static let sealedColumns = names(SealedValueStore.columns).map { "s.\($0) AS s_\($0)" }.joined(separator: ", ")
        private static func names(_ list: String) -> [String] { list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        static let name = "mercato_live_install_sealed"
        static let postgres = numbered(text)
    }

    /// An install in any state, uninstalled included.
    public static func find(id: String, on db: any SQLDatabase) async throws -> InstallRecord? {
        try await db.raw("SELECT \(unsafeRaw: columns) FROM installs WHERE id = \(bind: id)")
            .first().map(InstallRecord.init(row:))
    }

    public static func liveInstall(org: String, appID: String, on db: any SQLDatabase) async throws -> InstallRecord? {
        try await db.raw("SELECT \(unsafeRaw: columns) FROM installs WHERE org_id = \(bind: org) AND app_id = \(bind: appID) AND removed_at IS NULL")
            .first().map(InstallRecord.init(row:))
    }

    public static func countLive(org: String, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM installs WHERE org_id = \(bind: org) AND removed_at IS NULL").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// A page of an org's live installs, by id.
    public static func page(org: String, afterID: String, limit: Int, on db: any SQLDatabase) async throws -> [InstallRecord] {
        try await db.raw("""
            SELECT \(unsafeRaw: columns) FROM installs WHERE org_id = \(bind: org) AND removed_at IS NULL AND id > \(bind: afterID)
            ORDER BY id LIMIT \(bind: limit)
            """).all().map(InstallRecord.init(row:))
    }
}

/// An event waiting in the outbox for delivery (written in the same transaction as its change).
public struct OutboxEventRecord: Sendable, Codable, Equatable {
    public var id: String
    public var orgId: String
    public var installId: String?
    public var appId: String?
    public var type: String
    /// JSON: `{"type", "timestamp", "data"}` as it will be delivered.
    public var payload: String
    public var createdAt: Int64
    public var dispatchedAt: Int64?
    /// When every plugin's "has been" hook ran for it; set at once for a type no hook takes, so
    /// the hook dispatcher never claims it.
    public var hooksDoneAt: Int64?

    public init(id: String, orgId: String, installId: String?, appId: String?, type: String, payload: String, createdAt: Int64,
                dispatchedAt: Int64? = nil, hooksDoneAt: Int64? = nil) {
        self.id = id
        self.orgId = orgId
        self.installId = installId
        self.appId = appId
        self.type = type
        self.payload = payload
        self.createdAt = createdAt
        self.dispatchedAt = dispatchedAt
        self.hooksDoneAt = hooksDoneAt
    }
}

/// Rows of `outbox_events`.
public enum OutboxStore {
    static let columns = "id, org_id, install_id, app_id, type, payload, created_at, dispatched_at, hooks_done_at"

    /// Inserts `records` with multi-row statements (one event, or a batch of plugin writes' events).
    public static func insert(_ records: [OutboxEventRecord], on db: any SQLDatabase) async throws {
        try await MultiRowInsert.run(into: "outbox_events", columns: columns, rows: records.map { e in
            [e.id, e.orgId, e.installId, e.appId, e.type, e.payload, e.createdAt, e.dispatchedAt, e.hooksDoneAt]
        }, on: db)
    }

    public static func events(install: String, on db: any SQLDatabase) async throws -> [OutboxEventRecord] {
        try await db.raw("SELECT id, org_id, install_id, app_id, type, payload, created_at, dispatched_at FROM outbox_events WHERE install_id = \(bind: install) ORDER BY id")
            .all(decoding: OutboxEventRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }
}

/// An audit row: who did what to which target, when, under which request. Never values.
public struct AuditRecord: Sendable, Codable, Equatable {
    public var id: String
    public var orgId: String
    public var actor: String
    public var action: String
    public var target: String
    public var requestId: String?
    /// JSON object of non-secret facts (field names, versions, statuses).
    public var details: String
    public var createdAt: Int64

    public init(id: String, orgId: String, actor: String, action: String, target: String, requestId: String?, details: String, createdAt: Int64) {
        self.id = id
        self.orgId = orgId
        self.actor = actor
        self.action = action
        self.target = target
        self.requestId = requestId
        self.details = details
        self.createdAt = createdAt
    }
}

/// Rows of `audit_log`.
public enum AuditStore {
    public static func insert(_ a: AuditRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO audit_log (id, org_id, actor, action, target, request_id, details, created_at)
            VALUES (\(bind: a.id), \(bind: a.orgId), \(bind: a.actor), \(bind: a.action), \(bind: a.target), \(bind: a.requestId), \(bind: a.details), \(bind: a.createdAt))
            """).run()
    }

    public static func rows(org: String, target: String, on db: any SQLDatabase) async throws -> [AuditRecord] {
        try await db.raw("""
            SELECT id, org_id, actor, action, target, request_id, details, created_at FROM audit_log
            WHERE org_id = \(bind: org) AND target = \(bind: target) ORDER BY id
            """).all(decoding: AuditRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }
}
