public import SQLKit

/// One started OAuth connect flow. Only digests of the `state` and of the browser cookie are
/// kept; the PKCE verifier is sealed in `sealed_values` under the row's id.
public struct OAuthStateRecord: Sendable, Codable, Equatable {
    public var id: String
    public var stateHash: String
    public var browserHash: String
    public var orgId: String
    public var installId: String
    public var providerKey: String
    /// The principal that started the flow.
    public var startedBy: String
    public var createdAt: Int64
    public var expiresAt: Int64
    /// Set when a callback consumed the state; a second callback is a replay.
    public var usedAt: Int64?

    public init(id: String, stateHash: String, browserHash: String, orgId: String, installId: String, providerKey: String,
                startedBy: String, createdAt: Int64, expiresAt: Int64, usedAt: Int64? = nil) {
        self.id = id
        self.stateHash = stateHash
        self.browserHash = browserHash
        self.orgId = orgId
        self.installId = installId
        self.providerKey = providerKey
        self.startedBy = startedBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
    }
}

/// An install's connection to an outside account. The tokens themselves are sealed in
/// `sealed_values` with the install as owner, so an uninstall destroys them with the config.
public struct ConnectionRecord: Sendable, Codable, Equatable {
    public var id: String
    public var installId: String
    public var orgId: String
    public var providerKey: String
    public var status: ConnectionStatus
    public var accountId: String?
    public var accountName: String?
    /// The scopes the provider granted.
    public var scopes: [String]
    /// When the access token expires; `nil` when the provider gave no lifetime.
    public var expiresAt: Int64?
    /// When the current access token was obtained.
    public var obtainedAt: Int64
    /// Grows with every stored token set; a waiter compares it to see a refresh land.
    public var tokenVersion: Int
    public var refreshFailures: Int
    /// The background refresher leaves the connection alone until then (after a failure).
    public var nextRefreshAt: Int64?
    /// The last refresh error code (never a provider's text).
    public var lastError: String?
    public var leaseOwner: String?
    public var leaseUntil: Int64?
    public var connectedBy: String
    public var connectedAt: Int64
    public var refreshedAt: Int64?
    public var updatedAt: Int64

    public init(id: String, installId: String, orgId: String, providerKey: String, status: ConnectionStatus, accountId: String?, accountName: String?,
                scopes: [String], expiresAt: Int64?, obtainedAt: Int64, tokenVersion: Int, refreshFailures: Int = 0, nextRefreshAt: Int64? = nil,
                lastError: String? = nil, leaseOwner: String? = nil, leaseUntil: Int64? = nil, connectedBy: String, connectedAt: Int64,
                refreshedAt: Int64? = nil, updatedAt: Int64) {
        self.id = id
        self.installId = installId
        self.orgId = orgId
        self.providerKey = providerKey
        self.status = status
        self.accountId = accountId
        self.accountName = accountName
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.obtainedAt = obtainedAt
        self.tokenVersion = tokenVersion
        self.refreshFailures = refreshFailures
        self.nextRefreshAt = nextRefreshAt
        self.lastError = lastError
        self.leaseOwner = leaseOwner
        self.leaseUntil = leaseUntil
        self.connectedBy = connectedBy
        self.connectedAt = connectedAt
        self.refreshedAt = refreshedAt
        self.updatedAt = updatedAt
    }
}

/// Whether a connection's grant still works.
public enum ConnectionStatus: String, Sendable, Codable {
    case connected
    /// The provider refused the grant (`invalid_grant`): an admin must connect again.
    case needsReconnect = "needs_reconnect"
}

extension ConnectionRecord {
    /// Decodes a row of ``ConnectionStore``'s columns.
    init(row: any SQLRow) throws {
        struct Columns: Decodable {
            var id, installId, orgId, providerKey, status: String
            var accountId, accountName: String?
            var scopes: String
            var expiresAt: Int64?
            var obtainedAt: Int64
            var tokenVersion, refreshFailures: Int
            var nextRefreshAt: Int64?
            var lastError, leaseOwner: String?
            var leaseUntil: Int64?
            var connectedBy: String
            var connectedAt: Int64
            var refreshedAt: Int64?
            var updatedAt: Int64
        }
        let c = try row.decode(model: Columns.self, keyDecodingStrategy: .convertFromSnakeCase)
        guard let status = ConnectionStatus(rawValue: c.status) else { throw StorageError("oauth_connections.status holds an unknown status") }
        self.init(id: c.id, installId: c.installId, orgId: c.orgId, providerKey: c.providerKey, status: status, accountId: c.accountId,
                  accountName: c.accountName, scopes: try StoredList.decode(c.scopes), expiresAt: c.expiresAt, obtainedAt: c.obtainedAt,
                  tokenVersion: c.tokenVersion, refreshFailures: c.refreshFailures, nextRefreshAt: c.nextRefreshAt, lastError: c.lastError,
                  leaseOwner: c.leaseOwner, leaseUntil: c.leaseUntil, connectedBy: c.connectedBy, connectedAt: c.connectedAt,
                  refreshedAt: c.refreshedAt, updatedAt: c.updatedAt)
    }
}

/// Rows of `oauth_states`.
public enum OAuthStateStore {
    static let columns = "id, state_hash, browser_hash, org_id, install_id, provider_key, started_by, created_at, expires_at, used_at"

    public static func insert(_ r: OAuthStateRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO oauth_states (\(unsafeRaw: columns))
            VALUES (\(bind: r.id), \(bind: r.stateHash), \(bind: r.browserHash), \(bind: r.orgId), \(bind: r.installId), \(bind: r.providerKey),
                    \(bind: r.startedBy), \(bind: r.createdAt), \(bind: r.expiresAt), NULL)
            """).run()
    }

    public static func find(stateHash: String, on db: any SQLDatabase) async throws -> OAuthStateRecord? {
        try await db.raw("SELECT \(unsafeRaw: columns) FROM oauth_states WHERE state_hash = \(bind: stateHash)")
            .first(decoding: OAuthStateRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Marks the state used; `false` when another callback used it first.
    public static func consume(id: String, at millis: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("UPDATE oauth_states SET used_at = \(bind: millis) WHERE id = \(bind: id) AND used_at IS NULL RETURNING id").all().isEmpty
    }

    /// Deletes states that expired before `millis`; answers their ids (their sealed verifiers go too).
    public static func pruneExpired(before millis: Int64, limit: Int, on db: any SQLDatabase) async throws -> [String] {
        try await db.raw("""
            DELETE FROM oauth_states WHERE id IN (SELECT id FROM oauth_states WHERE expires_at < \(bind: millis) ORDER BY expires_at LIMIT \(bind: limit))
            RETURNING id
            """).all().map { try $0.decode(column: "id", as: String.self) }
    }
}

/// Rows of `oauth_connections`.
public enum ConnectionStore {
    static let columns = """
        id, install_id, org_id, provider_key, status, account_id, account_name, scopes, expires_at, obtained_at, token_version, \
        refresh_failures, next_refresh_at, last_error, lease_owner, lease_until, connected_by, connected_at, refreshed_at, updated_at
        """

    public static func find(install: String, on db: any SQLDatabase) async throws -> ConnectionRecord? {
        try await db.raw("SELECT \(unsafeRaw: columns) FROM oauth_connections WHERE install_id = \(bind: install)")
            .first().map(ConnectionRecord.init(row:))
    }

    /// Stores a fresh connection, replacing an earlier one of the same install (a reconnect
    /// keeps the connection id and takes over any lease).
    public static func upsert(_ r: ConnectionRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO oauth_connections (\(unsafeRaw: columns))
            VALUES (\(bind: r.id), \(bind: r.installId), \(bind: r.orgId), \(bind: r.providerKey), \(bind: r.status.rawValue), \(bind: r.accountId),
                    \(bind: r.accountName), \(bind: StoredList.text(r.scopes)), \(bind: r.expiresAt), \(bind: r.obtainedAt), \(bind: r.tokenVersion), 0, NULL, NULL,
                    NULL, NULL, \(bind: r.connectedBy), \(bind: r.connectedAt), NULL, \(bind: r.updatedAt))
            ON CONFLICT (install_id) DO UPDATE SET
                provider_key = excluded.provider_key, status = excluded.status, account_id = excluded.account_id,
                account_name = excluded.account_name, scopes = excluded.scopes, expires_at = excluded.expires_at,
                obtained_at = excluded.obtained_at, token_version = oauth_connections.token_version + 1, refresh_failures = 0,
                next_refresh_at = NULL, last_error = NULL, lease_owner = NULL, lease_until = NULL,
                connected_by = excluded.connected_by, connected_at = excluded.connected_at, refreshed_at = NULL,
                updated_at = excluded.updated_at
            """).run()
    }

    /// Takes the refresh lease of a connected install unless someone holds a live one.
    public static func takeLease(install: String, owner: String, until: Int64, now: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("""
            UPDATE oauth_connections SET lease_owner = \(bind: owner), lease_until = \(bind: until)
            WHERE install_id = \(bind: install) AND status = 'connected' AND (lease_until IS NULL OR lease_until < \(bind: now))
            RETURNING id
            """).all().isEmpty
    }

    public static func releaseLease(install: String, owner: String, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE oauth_connections SET lease_owner = NULL, lease_until = NULL
            WHERE install_id = \(bind: install) AND lease_owner = \(bind: owner)
            """).run()
    }

    /// Records a refreshed token set, only while `owner` still holds the lease (a disconnect or
    /// reconnect meanwhile wins); releases the lease.
    public static func storeRefreshed(install: String, owner: String, expiresAt: Int64?, scopes: [String], at now: Int64,
                                      on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("""
            UPDATE oauth_connections SET expires_at = \(bind: expiresAt), obtained_at = \(bind: now), scopes = \(bind: StoredList.text(scopes)),
                token_version = token_version + 1, refresh_failures = 0, next_refresh_at = NULL, last_error = NULL,
                lease_owner = NULL, lease_until = NULL, refreshed_at = \(bind: now), updated_at = \(bind: now)
            WHERE install_id = \(bind: install) AND lease_owner = \(bind: owner) AND status = 'connected'
            RETURNING id
            """).all().isEmpty
    }

    /// A transient refresh failure: counts it, schedules the next try, releases the lease.
    public static func recordFailure(install: String, owner: String, error: String, nextAt: Int64, at now: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE oauth_connections SET refresh_failures = refresh_failures + 1, next_refresh_at = \(bind: nextAt),
                last_error = \(bind: error), lease_owner = NULL, lease_until = NULL, updated_at = \(bind: now)
            WHERE install_id = \(bind: install) AND lease_owner = \(bind: owner)
            """).run()
    }

    /// The grant is dead (`invalid_grant`): the connection needs the admin to connect again.
    public static func markNeedsReconnect(install: String, owner: String, error: String, at now: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("""
            UPDATE oauth_connections SET status = 'needs_reconnect', last_error = \(bind: error), expires_at = NULL,
                lease_owner = NULL, lease_until = NULL, next_refresh_at = NULL, updated_at = \(bind: now)
            WHERE install_id = \(bind: install) AND lease_owner = \(bind: owner) AND status = 'connected'
            RETURNING id
            """).all().isEmpty
    }

    @discardableResult
    public static func delete(install: String, on db: any SQLDatabase) async throws -> Bool {
        try await !db.raw("DELETE FROM oauth_connections WHERE install_id = \(bind: install) RETURNING id").all().isEmpty
    }

    /// Installs whose access token is due for a refresh at `now`: within `margin` of expiry and
    /// past half its lifetime (so a short-lived token is not refreshed on every use), not
    /// waiting out a back-off, not leased.
    public static func due(now: Int64, margin: Int64, limit: Int, on db: any SQLDatabase) async throws -> [String] {
        try await db.raw("""
            SELECT install_id FROM oauth_connections
            WHERE status = 'connected' AND expires_at IS NOT NULL AND expires_at <= \(bind: now + margin)
              AND (expires_at - \(bind: now)) * 2 <= expires_at - obtained_at
              AND (next_refresh_at IS NULL OR next_refresh_at <= \(bind: now))
              AND (lease_until IS NULL OR lease_until < \(bind: now))
            ORDER BY expires_at LIMIT \(bind: limit)
            """).all().map { try $0.decode(column: "install_id", as: String.self) }
    }
}

extension ProviderStore {
    /// A provider row: its definition (JSON), client id and where it came from.
    public struct Row: Sendable, Codable, Equatable {
        public var key: String
        public var definition: String
        public var clientId: String?
        public var source: String
        public var updatedAt: Int64
    }

    public static func find(key: String, on db: any SQLDatabase) async throws -> Row? {
        try await db.raw("SELECT key, definition, client_id, source, updated_at FROM oauth_providers WHERE key = \(bind: key)")
            .first(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func all(on db: any SQLDatabase) async throws -> [Row] {
        try await db.raw("SELECT key, definition, client_id, source, updated_at FROM oauth_providers ORDER BY key")
            .all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Sets a provider as the operator defines it: definition, client id, source `api`.
    public static func put(key: String, definitionJSON: String, clientID: String?, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO oauth_providers (key, definition, source, updated_at, client_id)
            VALUES (\(bind: key), \(bind: definitionJSON), 'api', \(bind: millis), \(bind: clientID))
            ON CONFLICT (key) DO UPDATE SET definition = excluded.definition, source = 'api', updated_at = excluded.updated_at,
                client_id = excluded.client_id
            """).run()
    }
}
