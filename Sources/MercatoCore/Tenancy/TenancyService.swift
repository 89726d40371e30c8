import Foundation
public import MercatoHooks
import MercatoCrypto
public import MercatoStorage

/// Orgs, their members and API tokens; turns a bearer token into a ``Principal``.
public struct TenancyService: Sendable {
    public let database: Database
    /// Digest of `MERCATO_OPERATOR_TOKEN`, accepted as an operator token when set.
    private let configuredOperatorDigest: String?

    public init(database: Database, operatorToken: String?) {
        self.database = database
        self.configuredOperatorDigest = operatorToken.map(APITokenText.digest)
    }

    // MARK: Authentication

    /// The caller a bearer token stands for, or `nil` when the token is unknown, revoked or expired.
    public func authenticate(token: String) async throws -> Principal? {
        try await grant(for: token)?.principal
    }

    /// What a bearer token may do: its caller, scopes and hourly limit; `nil` when the token is
    /// unknown, revoked or expired (401 alike: the answer says nothing about which).
    public func grant(for token: String, at millis: Int64 = Timestamp.nowMillis()) async throws -> TokenGrant? {
        guard !token.isEmpty, token.count <= 256 else { return nil }
        let digest = APITokenText.digest(token)
        if let configured = configuredOperatorDigest, ConstantTime.equals(Array(digest.utf8), Array(configured.utf8)) {
            return TokenGrant(principal: .operator(tokenID: "tok_configured_operator"), scopes: Set(TokenScope.allCases),
                              hourlyLimit: TokenGrant.operatorHourlyLimit)
        }
        guard let live = try await database.read({ try await AccessStore.liveToken(hash: digest, on: $0) }) else { return nil }
        let record = live.token
        if let expiry = record.expiresAt, expiry <= millis { return nil }
        guard let org = record.orgId else {
            return TokenGrant(principal: .operator(tokenID: record.id), scopes: Set(TokenScope.allCases),
                              hourlyLimit: record.hourlyLimit ?? TokenGrant.operatorHourlyLimit)
        }
        guard let principal = record.principalId, let role = MemberRole(rawValue: record.role) else { return nil }
        let plan = live.plan.flatMap(Plan.init(rawValue:)) ?? .free
        return TokenGrant(principal: .member(tokenID: record.id, principalID: principal, orgID: org, role: role),
                          scopes: TokenGrant.scopes(stored: record.scopes, role: role),
                          hourlyLimit: record.hourlyLimit ?? plan.defaultTokenHourlyLimit)
    }

    /// On a database with no operator token yet, creates one and answers its text (shown once).
    /// With `MERCATO_OPERATOR_TOKEN` set nothing is generated.
    public func bootstrapOperatorToken() async throws -> String? {
        guard configuredOperatorDigest == nil else { return nil }
        return try await database.transaction { db -> String? in
            guard try await AccessStore.operatorTokenCount(on: db) == 0 else { return nil }
            let text = APITokenText.generate()
            try await AccessStore.insert(
                TokenRecord(id: RecordID.make("tok"), orgId: nil, principalId: nil, role: "operator", name: "bootstrap operator token",
                            tokenHash: APITokenText.digest(text), createdAt: Timestamp.nowMillis()),
                on: db
            )
            return text
        }
    }

    /// Creates another operator token (`mercato token create --operator`).
    public func createOperatorToken(name: String) async throws -> (TokenRecord, String) {
        let text = APITokenText.generate()
        let record = TokenRecord(id: RecordID.make("tok"), orgId: nil, principalId: nil, role: "operator", name: name,
                                 tokenHash: APITokenText.digest(text), createdAt: Timestamp.nowMillis())
        try await database.transaction { try await AccessStore.insert(record, on: $0) }
        return (record, text)
    }

    // MARK: Orgs

    /// Creates an org (operator only).
    public func createOrg(name: String, plan: Plan, by caller: Principal, requestID: String? = nil) async throws -> OrgRecord {
        guard caller.isOperator else { throw APIError.forbidden("Only the operator can create orgs.") }
        let org = OrgRecord(id: RecordID.make("org"), name: name, plan: plan.rawValue, createdAt: Timestamp.nowMillis())
        try await database.transaction { db in
            try await OrgStore.insert(org, on: db)
            try await ActivityLog.record(org: org.id, actor: caller.actorID, action: "org.created", target: org.id, requestID: requestID,
                                         details: ["plan": .string(plan.rawValue)], at: org.createdAt, on: db)
        }
        return org
    }

    /// The org if the caller may see it; another org answers 404, never 403.
    public func org(_ id: String, visibleTo caller: Principal) async throws -> OrgRecord {
        guard caller.isOperator || caller.orgID == id,
              let org = try await database.read({ try await OrgStore.find(id: id, on: $0) })
        else { throw APIError.notFound("Org \(id)") }
        return org
    }

    // MARK: Tokens

    /// Creates a service account in `orgID` with `role` and a token for it; answers the token
    /// text once. Allowed to the operator and to the org's owners. `options` (scopes, expiry,
    /// hourly limit) are checked here, for the API and the pages alike: 422 naming each field.
    public func createToken(in orgID: String, name: String, role: MemberRole, options: TokenOptions = TokenOptions(), by caller: Principal,
                            requestID: String? = nil) async throws -> (TokenRecord, String) {
        let org = try await self.org(orgID, visibleTo: caller)
        guard caller.isOperator || caller.has(.owner, in: org.id) else {
            throw APIError.forbidden("Creating API tokens needs the owner role in this org.")
        }
        let now = Timestamp.nowMillis()
        let checked = try options.checked(role: role, at: now)
        let principal = PrincipalRecord(id: RecordID.make("usr"), kind: "service", name: name, createdAt: now)
        let text = APITokenText.generate()
        let token = TokenRecord(id: RecordID.make("tok"), orgId: org.id, principalId: principal.id, role: role.rawValue, name: name,
                                tokenHash: APITokenText.digest(text), createdAt: now, scopes: checked.scopes.map(TokenScope.stored),
                                expiresAt: checked.expiresAt, hourlyLimit: checked.hourlyLimit)
        var noted: [String: JSONValue] = ["role": .string(role.rawValue), "name": .string(name)]
        if let scopes = checked.scopes { noted["scopes"] = .array(scopes.sorted().map { .string($0.rawValue) }) }
        let details = noted
        try await database.transaction { db in
            try await AccessStore.insert(principal, on: db)
            try await AccessStore.addMembership(org: org.id, principal: principal.id, role: role.rawValue, at: now, on: db)
            try await AccessStore.insert(token, on: db)
            try await ActivityLog.record(org: org.id, actor: caller.actorID, action: "token.created", target: token.id, requestID: requestID,
                                         details: details, at: now, on: db)
        }
        return (token, text)
    }

    /// The org's plan default for tokens created without their own hourly limit.
    public func defaultHourlyLimit(of org: OrgRecord) -> Int {
        (Plan(rawValue: org.plan) ?? .free).defaultTokenHourlyLimit
    }

    /// The org's API tokens, never their text (operator and the org's owners, as creating them).
    public func tokens(in orgID: String, by caller: Principal) async throws -> [TokenRecord] {
        let org = try await self.org(orgID, visibleTo: caller)
        guard caller.isOperator || caller.has(.owner, in: org.id) else {
            throw APIError.forbidden("Listing API tokens needs the owner role in this org.")
        }
        return try await database.read { try await AccessStore.tokens(org: org.id, on: $0) }
    }

    /// One of the org's tokens' recent requests, newest first (operator and the org's owners);
    /// answers the page and the cursor of the next one.
    public func usage(of tokenID: String, in orgID: String, by caller: Principal, cursor: String?, limit: Int) async throws -> ([TokenUsageRecord], String?) {
        let org = try await self.org(orgID, visibleTo: caller)
        guard caller.isOperator || caller.has(.owner, in: org.id) else {
            throw APIError.forbidden("Reading API token usage needs the owner role in this org.")
        }
        let rows = try await database.read { db -> [TokenUsageRecord]? in
            guard try await AccessStore.tokenExists(id: tokenID, org: org.id, on: db) else { return nil }
            return try await TokenUsageStore.usage(token: tokenID, before: cursor, limit: limit + 1, on: db)
        }
        guard let rows else { throw APIError.notFound("Token \(tokenID.prefix(64))") }
        return rows.count > limit ? (Array(rows.prefix(limit)), rows[limit - 1].id) : (rows, nil)
    }

    /// Revokes one of the org's tokens: the next request with it is 401.
    public func revokeToken(_ tokenID: String, in orgID: String, by caller: Principal, requestID: String? = nil) async throws {
        let org = try await self.org(orgID, visibleTo: caller)
        guard caller.isOperator || caller.has(.owner, in: org.id) else {
            throw APIError.forbidden("Revoking API tokens needs the owner role in this org.")
        }
        let now = Timestamp.nowMillis()
        try await database.transaction { db in
            guard try await AccessStore.revoke(token: tokenID, org: org.id, at: now, on: db) else { throw APIError.notFound("Token \(tokenID)") }
            try await ActivityLog.record(org: org.id, actor: caller.actorID, action: "token.revoked", target: tokenID, requestID: requestID,
                                         details: [:], at: now, on: db)
        }
    }
}
