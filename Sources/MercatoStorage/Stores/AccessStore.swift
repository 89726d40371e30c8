public import SQLKit

/// A user or service account.
public struct PrincipalRecord: Sendable, Codable, Equatable {
    public var id: String
    /// `user` or `service`.
    public var kind: String
    public var name: String
    public var email: String?
    public var createdAt: Int64

    public init(id: String, kind: String, name: String, email: String? = nil, createdAt: Int64) {
        self.id = id
        self.kind = kind
        self.name = name
        self.email = email
        self.createdAt = createdAt
    }
}

/// An API token as stored: the digest, never the text.
public struct TokenRecord: Sendable, Codable, Equatable {
    public var id: String
    /// `nil` for operator tokens.
    public var orgId: String?
    public var principalId: String?
    public var role: String
    public var name: String
    public var tokenHash: String
    public var createdAt: Int64
    public var revokedAt: Int64?
    /// Scope names separated by spaces; `nil` means every scope the role grants.
    public var scopes: String?
    public var expiresAt: Int64?
    /// Requests an hour; `nil` means the org plan's default.
    public var hourlyLimit: Int?
    /// Written in batches, so it can trail the last request by a moment.
    public var lastUsedAt: Int64?

    public init(id: String, orgId: String?, principalId: String?, role: String, name: String, tokenHash: String, createdAt: Int64, revokedAt: Int64? = nil,
                scopes: String? = nil, expiresAt: Int64? = nil, hourlyLimit: Int? = nil, lastUsedAt: Int64? = nil) {
        self.id = id
        self.orgId = orgId
        self.principalId = principalId
        self.role = role
        self.name = name
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.hourlyLimit = hourlyLimit
        self.lastUsedAt = lastUsedAt
    }
}

/// A live token with its org's plan, as authentication needs it.
public struct LiveToken: Sendable {
    public var token: TokenRecord
    /// The org's plan; `nil` for operator tokens.
    public var plan: String?
}

/// Rows of `principals`, `memberships` and `api_tokens`.
public enum AccessStore {
    public static func insert(_ principal: PrincipalRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO principals (id, kind, name, email, created_at)
            VALUES (\(bind: principal.id), \(bind: principal.kind), \(bind: principal.name), \(bind: principal.email), \(bind: principal.createdAt))
            """).run()
    }

    public static func addMembership(org: String, principal: String, role: String, at millis: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO memberships (org_id, principal_id, role, created_at)
            VALUES (\(bind: org), \(bind: principal), \(bind: role), \(bind: millis))
            """).run()
    }

    public static func insert(_ token: TokenRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO api_tokens (id, org_id, principal_id, role, name, token_hash, created_at, revoked_at, scopes, expires_at, hourly_limit)
            VALUES (\(bind: token.id), \(bind: token.orgId), \(bind: token.principalId), \(bind: token.role), \(bind: token.name),
                    \(bind: token.tokenHash), \(bind: token.createdAt), \(bind: token.revokedAt), \(bind: token.scopes), \(bind: token.expiresAt),
                    \(bind: token.hourlyLimit))
            """).run()
    }

    /// The live (not revoked) token with this digest and its org's plan. Expiry is the
    /// caller's to check (the statement stays the same whatever the time).
    public static func liveToken(hash: String, on db: any SQLDatabase) async throws -> LiveToken? {
        try await db.prepared(LiveTokenRead.self, [hash]).first.map { row in
                // By column name: this runs on every authenticated request.
                LiveToken(
                    token: TokenRecord(
                        id: try row.decode(column: "id", as: String.self), orgId: try row.decode(column: "org_id", as: String?.self),
                        principalId: try row.decode(column: "principal_id", as: String?.self), role: try row.decode(column: "role", as: String.self),
                        name: try row.decode(column: "name", as: String.self), tokenHash: try row.decode(column: "token_hash", as: String.self),
                        createdAt: try row.decode(column: "created_at", as: Int64.self), revokedAt: try row.decode(column: "revoked_at", as: Int64?.self),
                        scopes: try row.decode(column: "scopes", as: String?.self), expiresAt: try row.decode(column: "expires_at", as: Int64?.self),
                        hourlyLimit: try row.decode(column: "hourly_limit", as: Int?.self)),
                    plan: try row.decode(column: "plan", as: String?.self))
            }
    }

    /// The org's tokens (live and revoked), newest first.
    public static func tokens(org: String, on db: any SQLDatabase) async throws -> [TokenRecord] {
        try await db.raw("""
            SELECT id, org_id, principal_id, role, name, token_hash, created_at, revoked_at, scopes, expires_at, hourly_limit, last_used_at
            FROM api_tokens WHERE org_id = \(bind: org) ORDER BY created_at DESC, id DESC LIMIT 1000
            """).all(decoding: TokenRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// `true` when `id` is one of the org's tokens (live or revoked).
    public static func tokenExists(id: String, org: String, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("SELECT id FROM api_tokens WHERE id = \(bind: id) AND org_id = \(bind: org)").first() != nil
    }

    /// Revokes the org's token `id`; `false` when there is no such live token in that org.
    public static func revoke(token id: String, org: String, at millis: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("""
            UPDATE api_tokens SET revoked_at = \(bind: millis)
            WHERE id = \(bind: id) AND org_id = \(bind: org) AND revoked_at IS NULL RETURNING id
            """).first() != nil
    }

    /// How many operator tokens exist (live or not): zero means a first start.
    public static func operatorTokenCount(on db: any SQLDatabase) async throws -> Int {
        let row = try await db.raw("SELECT COUNT(*) AS n FROM api_tokens WHERE org_id IS NULL").first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }
}

/// ``AccessStore/liveToken(hash:on:)``: every token-authenticated request's first read.
enum LiveTokenRead: PreparedText {
    static let text = """
        SELECT t.id, t.org_id, t.principal_id, t.role, t.name, t.token_hash, t.created_at, t.revoked_at, t.scopes, t.expires_at,
               t.hourly_limit, o.plan
        FROM api_tokens t LEFT JOIN orgs o ON o.id = t.org_id
        WHERE t.token_hash = ? AND t.revoked_at IS NULL
        """
    static let name = "mercato_live_token"
    static let postgres = numbered(text)
}
