public import SQLKit

/// A person's sign-in: their `user` principal, email and Argon2id hash.
public struct CredentialRecord: Sendable, Codable, Equatable {
    public var principalId: String
    public var email: String
    public var passwordHash: String
    public var updatedAt: Int64

    public init(principalId: String, email: String, passwordHash: String, updatedAt: Int64) {
        self.principalId = principalId
        self.email = email
        self.passwordHash = passwordHash
        self.updatedAt = updatedAt
    }
}

/// An invitation as stored: the digest of its link's token, never the token.
public struct InvitationRecord: Sendable, Codable, Equatable {
    public var id: String
    public var orgId: String
    public var email: String?
    public var role: String
    public var tokenHash: String
    public var createdBy: String
    public var createdAt: Int64
    public var expiresAt: Int64
    public var usedAt: Int64?

    public init(id: String, orgId: String, email: String?, role: String, tokenHash: String, createdBy: String, createdAt: Int64, expiresAt: Int64, usedAt: Int64? = nil) {
        self.id = id
        self.orgId = orgId
        self.email = email
        self.role = role
        self.tokenHash = tokenHash
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
    }
}

/// A live browser session joined with what a page needs: the person, the org and the role the
/// membership holds now (a changed or removed membership applies to the next request).
public struct SessionRow: Sendable, Codable, Equatable {
    public var id: String
    public var principalId: String
    public var orgId: String
    public var expiresAt: Int64
    public var endsAt: Int64
    public var role: String
    public var name: String
    public var email: String?
    public var orgName: String
    public var orgPlan: String
}

/// Rows of `user_credentials`, `invitations` and `web_sessions`.
public enum PeopleStore {
    public static func credential(email: String, on db: any SQLDatabase) async throws -> CredentialRecord? {
        try await db.raw("SELECT principal_id, email, password_hash, updated_at FROM user_credentials WHERE email = \(bind: email)")
            .first(decoding: CredentialRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    public static func insert(_ credential: CredentialRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO user_credentials (principal_id, email, password_hash, updated_at)
            VALUES (\(bind: credential.principalId), \(bind: credential.email), \(bind: credential.passwordHash), \(bind: credential.updatedAt))
            """).run()
    }

    /// The role `principal` holds in `org`, if a member.
    public static func role(of principal: String, in org: String, on db: any SQLDatabase) async throws -> String? {
        try await db.raw("SELECT role FROM memberships WHERE org_id = \(bind: org) AND principal_id = \(bind: principal)")
            .first()?.decode(column: "role", as: String.self)
    }

    /// The org a person signs in to: their oldest membership.
    public static func firstOrg(of principal: String, on db: any SQLDatabase) async throws -> String? {
        try await db.raw("SELECT org_id FROM memberships WHERE principal_id = \(bind: principal) ORDER BY created_at, org_id LIMIT 1")
            .first()?.decode(column: "org_id", as: String.self)
    }

    public static func insert(_ invitation: InvitationRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO invitations (id, org_id, email, role, token_hash, created_by, created_at, expires_at, used_at)
            VALUES (\(bind: invitation.id), \(bind: invitation.orgId), \(bind: invitation.email), \(bind: invitation.role), \(bind: invitation.tokenHash),
                    \(bind: invitation.createdBy), \(bind: invitation.createdAt), \(bind: invitation.expiresAt), \(bind: invitation.usedAt))
            """).run()
    }

    /// The invitation with this token digest, used or not.
    public static func invitation(tokenHash: String, on db: any SQLDatabase) async throws -> InvitationRecord? {
        try await db.raw("""
            SELECT id, org_id, email, role, token_hash, created_by, created_at, expires_at, used_at
            FROM invitations WHERE token_hash = \(bind: tokenHash)
            """).first(decoding: InvitationRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Marks the invitation used if it still can be; `false` when another request used it first
    /// or it expired (the atomic UPDATE makes a link single use across nodes).
    public static func consume(invitation id: String, at now: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("""
            UPDATE invitations SET used_at = \(bind: now)
            WHERE id = \(bind: id) AND used_at IS NULL AND expires_at > \(bind: now) RETURNING id
            """).first() != nil
    }

    /// How many orgs exist: zero means a first start.
    public static func orgCount(on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM orgs").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    public static func insertSession(id: String, tokenHash: String, principal: String, org: String, createdAt: Int64, expiresAt: Int64, endsAt: Int64,
                                     on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO web_sessions (id, token_hash, principal_id, org_id, created_at, expires_at, ends_at)
            VALUES (\(bind: id), \(bind: tokenHash), \(bind: principal), \(bind: org), \(bind: createdAt), \(bind: expiresAt), \(bind: endsAt))
            """).run()
    }

    /// The session with this cookie digest that has not expired at `now`, with its membership.
    public static func session(tokenHash: String, now: Int64, on db: any SQLDatabase) async throws -> SessionRow? {
        try await db.raw("""
            SELECT s.id, s.principal_id, s.org_id, s.expires_at, s.ends_at, m.role, p.name, COALESCE(c.email, p.email) AS email, o.name AS org_name, o.plan AS org_plan
            FROM web_sessions s
            JOIN memberships m ON m.org_id = s.org_id AND m.principal_id = s.principal_id
            JOIN principals p ON p.id = s.principal_id
            JOIN orgs o ON o.id = s.org_id
            LEFT JOIN user_credentials c ON c.principal_id = s.principal_id
            WHERE s.token_hash = \(bind: tokenHash) AND s.expires_at > \(bind: now) AND s.ends_at > \(bind: now)
            """).first(decoding: SessionRow.self, keyDecodingStrategy: .convertFromSnakeCase)
    }

    /// Slides a session's expiry (never past its end).
    public static func renew(session id: String, expiresAt: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE web_sessions SET expires_at = \(bind: expiresAt) WHERE id = \(bind: id)").run()
    }

    public static func deleteSession(tokenHash: String, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM web_sessions WHERE token_hash = \(bind: tokenHash)").run()
    }

    // MARK: Embedded sign-in

    /// Records `jti` as used until `expiresAt`; `false` when it was already used (the primary
    /// key makes a token single use across nodes).
    public static func useSSOToken(jti: String, expiresAt: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("""
            INSERT INTO sso_used_tokens (jti, expires_at) VALUES (\(bind: jti), \(bind: expiresAt))
            ON CONFLICT (jti) DO NOTHING RETURNING jti
            """).first() != nil
    }

    /// The person a host subject stands for.
    public static func principal(ssoSubject subject: String, on db: any SQLDatabase) async throws -> String? {
        try await db.raw("SELECT principal_id FROM sso_subjects WHERE subject = \(bind: subject)")
            .first()?.decode(column: "principal_id", as: String.self)
    }

    public static func linkSSOSubject(_ subject: String, to principal: String, at now: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("INSERT INTO sso_subjects (subject, principal_id, created_at) VALUES (\(bind: subject), \(bind: principal), \(bind: now))").run()
    }

    /// A `user` principal by the email on its principal row or its password.
    public static func person(email: String, on db: any SQLDatabase) async throws -> String? {
        if let found = try await credential(email: email, on: db) { return found.principalId }
        return try await db.raw("SELECT id FROM principals WHERE kind = 'user' AND email = \(bind: email) ORDER BY created_at, id LIMIT 1")
            .first()?.decode(column: "id", as: String.self)
    }

    /// Sets a person's name and email as the host SaaS knows them.
    public static func updatePerson(_ principal: String, name: String, email: String, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE principals SET name = \(bind: name), email = \(bind: email) WHERE id = \(bind: principal)").run()
    }

    /// Sets the role of an existing membership.
    public static func setRole(_ role: String, of principal: String, in org: String, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE memberships SET role = \(bind: role) WHERE org_id = \(bind: org) AND principal_id = \(bind: principal)").run()
    }

    /// Names of those of `ids` that are members of `org` (people and token service accounts).
    public static func memberNames(org: String, ids: [String], on db: any SQLDatabase) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await db.raw("""
            SELECT p.id, p.name FROM principals p JOIN memberships m ON m.principal_id = p.id
            WHERE m.org_id = \(bind: org) AND p.id IN (\(binds: ids))
            """).all()
        var names: [String: String] = [:]
        for row in rows { names[try row.decode(column: "id", as: String.self)] = try row.decode(column: "name", as: String.self) }
        return names
    }

    /// Drops used token ids whose token has expired (bounded batch); answers how many went.
    @discardableResult
    /// Failed sign-ins under `key` since `since`: how many, and the time of the oldest.
    public static func signInFailures(key: String, since: Int64, on db: any SQLDatabase) async throws -> (count: Int, oldest: Int64?) {
        guard let row = try await db.raw("""
            SELECT COUNT(*) AS n, MIN(at) AS oldest FROM sign_in_failures WHERE key = \(bind: key) AND at > \(bind: since)
            """).first() else { return (0, nil) }
        return (try row.decode(column: "n", as: Int.self), try row.decode(column: "oldest", as: Int64?.self))
    }

    /// Records one failed sign-in under each of `keys`.
    public static func recordSignInFailure(keys: [String], at: Int64, on db: any SQLDatabase) async throws {
        for key in keys {
            try await db.raw("INSERT INTO sign_in_failures (key, at) VALUES (\(bind: key), \(bind: at))").run()
        }
    }

    /// Forgets the failures under `key` (a successful sign-in clears its email's).
    public static func clearSignInFailures(key: String, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM sign_in_failures WHERE key = \(bind: key)").run()
    }

    /// Drops failures at or before `before`; answers how many went.
    public static func expireSignInFailures(before: Int64, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("DELETE FROM sign_in_failures WHERE at <= \(bind: before) RETURNING key").all().count
    }

    public static func deleteExpiredSSOTokens(before now: Int64, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("""
            DELETE FROM sso_used_tokens WHERE jti IN (SELECT jti FROM sso_used_tokens WHERE expires_at <= \(bind: now) LIMIT 1000) RETURNING jti
            """).all().count
    }

    /// Drops sessions that ended before `now` (bounded batch); answers how many went.
    @discardableResult
    public static func deleteExpiredSessions(before now: Int64, on db: any SQLDatabase) async throws -> Int {
        let rows = try await db.raw("""
            DELETE FROM web_sessions WHERE id IN (SELECT id FROM web_sessions WHERE expires_at <= \(bind: now) OR ends_at <= \(bind: now) LIMIT 1000) RETURNING id
            """).all()
        return rows.count
    }
}
