import Foundation
public import SQLKit

/// An app in the registry (its manifests live in `app_versions`).
public struct AppRecord: Sendable, Codable, Equatable {
    public var id: String
    public var key: String
    public var developerOrgId: String
    /// `draft`, `published` or `unlisted`.
    public var status: String
    public var latestVersion: String
    public var name: String
    public var plan: String
    /// Lower-cased name and description, for catalog search on both engines.
    public var searchText: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, key: String, developerOrgId: String, status: String, latestVersion: String, name: String, plan: String, searchText: String, createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.key = key
        self.developerOrgId = developerOrgId
        self.status = status
        self.latestVersion = latestVersion
        self.name = name
        self.plan = plan
        self.searchText = searchText
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// An app secret's metadata; the secret itself is sealed in `sealed_values`.
public struct AppSecretRecord: Sendable, Codable, Equatable {
    public var id: String
    public var appId: String
    /// `webhook` or `command`.
    public var kind: String
    public var createdAt: Int64
    /// `nil` while current; set when a rotation starts its overlap.
    public var validUntil: Int64?

    public init(id: String, appId: String, kind: String, createdAt: Int64, validUntil: Int64?) {
        self.id = id
        self.appId = appId
        self.kind = kind
        self.createdAt = createdAt
        self.validUntil = validUntil
    }
}

/// A catalog row: the app and the manifest of its latest version.
public struct CatalogRow: Sendable {
    public var app: AppRecord
    public var manifestJSON: String
}

/// Rows of `apps`, `app_versions`, `app_categories` and `app_secrets`.
public enum AppStore {
    static let appColumns = "id, key, developer_org_id, status, latest_version, name, plan, search_text, created_at, updated_at"

    public static func insert(_ app: AppRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO apps (\(unsafeRaw: appColumns)) VALUES (\(bind: app.id), \(bind: app.key), \(bind: app.developerOrgId), \(bind: app.status),
                \(bind: app.latestVersion), \(bind: app.name), \(bind: app.plan), \(bind: app.searchText), \(bind: app.createdAt), \(bind: app.updatedAt))
            """).run()
    }

    public static func update(_ app: AppRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE apps SET status = \(bind: app.status), latest_version = \(bind: app.latestVersion), name = \(bind: app.name),
                plan = \(bind: app.plan), search_text = \(bind: app.searchText), updated_at = \(bind: app.updatedAt)
            WHERE id = \(bind: app.id)
            """).run()
    }

    public static func find(key: String, on db: any SQLDatabase) async throws -> AppRecord? {
        try await db.raw("SELECT \(unsafeRaw: appColumns) FROM apps WHERE key = \(bind: key)")
            .first(decoding: AppRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func find(id: String, on db: any SQLDatabase) async throws -> AppRecord? {
        try await db.raw("SELECT \(unsafeRaw: appColumns) FROM apps WHERE id = \(bind: id)")
            .first(decoding: AppRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func apps(ofOrg org: String, on db: any SQLDatabase) async throws -> [AppRecord] {
        try await db.raw("SELECT \(unsafeRaw: appColumns) FROM apps WHERE developer_org_id = \(bind: org) ORDER BY key")
            .all(decoding: AppRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func insertVersion(appID: String, version: String, manifestJSON: String, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO app_versions (app_id, version, manifest, created_at)
            VALUES (\(bind: appID), \(bind: version), \(bind: manifestJSON), \(bind: millis))
            """).run()
    }

    /// The manifest JSON of one version.
    public static func manifest(appID: String, version: String, on db: any SQLDatabase) async throws -> String? {
        try await db.raw("SELECT manifest FROM app_versions WHERE app_id = \(bind: appID) AND version = \(bind: version)")
            .first()?.decode(column: "manifest", as: String.self)
    }

    /// Every version's number, in insertion order.
    public static func versions(appID: String, on db: any SQLDatabase) async throws -> [String] {
        try await db.raw("SELECT version FROM app_versions WHERE app_id = \(bind: appID) ORDER BY created_at, version")
            .all().map { try $0.decode(column: "version", as: String.self) }
    }

    public static func setCategories(appID: String, _ categories: [String], on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM app_categories WHERE app_id = \(bind: appID)").run()
        for category in Set(categories) {
            try await db.raw("INSERT INTO app_categories (app_id, category) VALUES (\(bind: appID), \(bind: category))").run()
        }
    }

    /// Catalog page: published apps, plus the caller's own apps in any status; each of `words`
    /// must appear in the name or description; optional category; keys after `afterKey`.
    public static func catalog(visibleTo org: String?, words: [String], category: String?, afterKey: String, limit: Int, on db: any SQLDatabase) async throws -> [CatalogRow] {
        var query = SQLQueryString("""
            SELECT a.id, a.key, a.developer_org_id, a.status, a.latest_version, a.name, a.plan, a.search_text, a.created_at, a.updated_at,
                   v.manifest AS manifest
            FROM apps a JOIN app_versions v ON v.app_id = a.id AND v.version = a.latest_version
            WHERE (a.status = 'published' OR a.developer_org_id = \(bind: org ?? ""))
              AND a.key > \(bind: afterKey)
            """)
        for word in words {
            query.appendInterpolation(unsafeRaw: " AND a.search_text LIKE ")
            query.appendInterpolation(bind: "%" + likeEscaped(word.lowercased()) + "%")
            query.appendInterpolation(unsafeRaw: " ESCAPE '\\'")
        }
        if let category {
            query.appendInterpolation(unsafeRaw: " AND EXISTS (SELECT 1 FROM app_categories c WHERE c.app_id = a.id AND c.category = ")
            query.appendInterpolation(bind: category)
            query.appendInterpolation(unsafeRaw: ")")
        }
        query.appendInterpolation(unsafeRaw: " ORDER BY a.key LIMIT ")
        query.appendInterpolation(bind: limit)
        return try await db.raw(query).all().map { row in
            CatalogRow(app: try row.decode(model: AppRecord.self, keyDecodingStrategy: .convertFromSnakeCase),
                       manifestJSON: try row.decode(column: "manifest", as: String.self))
        }
    }

    static func likeEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    // MARK: Secrets

    public static func insertSecret(_ secret: AppSecretRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO app_secrets (id, app_id, kind, created_at, valid_until)
            VALUES (\(bind: secret.id), \(bind: secret.appId), \(bind: secret.kind), \(bind: secret.createdAt), \(bind: secret.validUntil))
            """).run()
    }

    /// Secrets of `kind` still valid at `millis`: the current one first, then the overlapping
    /// ones by how long they still verify.
    public static func validSecrets(appID: String, kind: String, at millis: Int64, on db: any SQLDatabase) async throws -> [AppSecretRecord] {
        try await db.raw("""
            SELECT id, app_id, kind, created_at, valid_until FROM app_secrets
            WHERE app_id = \(bind: appID) AND kind = \(bind: kind) AND (valid_until IS NULL OR valid_until > \(bind: millis))
            ORDER BY (CASE WHEN valid_until IS NULL THEN 0 ELSE 1 END), valid_until DESC, created_at DESC
            """).all(decoding: AppSecretRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func allSecrets(appID: String, on db: any SQLDatabase) async throws -> [AppSecretRecord] {
        try await db.raw("SELECT id, app_id, kind, created_at, valid_until FROM app_secrets WHERE app_id = \(bind: appID) ORDER BY created_at DESC, id DESC")
            .all(decoding: AppSecretRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func expireSecret(id: String, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE app_secrets SET valid_until = \(bind: millis) WHERE id = \(bind: id)").run()
    }
}

/// Rows of `platform_settings`: small facts the platform keeps (the catalog org's id).
public enum PlatformSettingStore {
    public static func get(_ key: String, on db: any SQLDatabase) async throws -> String? {
        try await db.raw("SELECT value FROM platform_settings WHERE key = \(bind: key)").first()?.decode(column: "value", as: String.self)
    }

    public static func set(_ key: String, _ value: String, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO platform_settings (key, value) VALUES (\(bind: key), \(bind: value))
            ON CONFLICT (key) DO UPDATE SET value = excluded.value
            """).run()
    }
}

/// Rows of `oauth_providers`: provider definitions (client credentials are sealed separately).
public enum ProviderStore {
    public static func upsert(key: String, definitionJSON: String, source: String, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO oauth_providers (key, definition, source, updated_at) VALUES (\(bind: key), \(bind: definitionJSON), \(bind: source), \(bind: millis))
            ON CONFLICT (key) DO UPDATE SET definition = excluded.definition, source = excluded.source, updated_at = excluded.updated_at
            """).run()
    }

    public static func definition(key: String, on db: any SQLDatabase) async throws -> String? {
        try await db.raw("SELECT definition FROM oauth_providers WHERE key = \(bind: key)").first()?.decode(column: "definition", as: String.self)
    }

    public static func keys(on db: any SQLDatabase) async throws -> [String] {
        try await db.raw("SELECT key FROM oauth_providers ORDER BY key").all().map { try $0.decode(column: "key", as: String.self) }
    }
}
