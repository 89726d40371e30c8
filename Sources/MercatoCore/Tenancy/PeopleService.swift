import Foundation
public import MercatoHooks
import MercatoCrypto
public import MercatoStorage
import NIOPosix
import SQLKit
import Synchronization

/// A signed-in browser: who, in which org, with which role (read on every request, so a changed
/// membership applies at once). The principal's token id is the session id.
public struct BrowserSession: Sendable, Equatable {
    public let id: String
    public let principal: Principal
    public let name: String
    public let email: String?
    public let orgID: String
    public let orgName: String
    public let plan: Plan
    public let role: MemberRole
}

/// What an invitation link's page shows before it is used.
public struct InvitationView: Sendable {
    public let id: String
    public let orgName: String
    public let email: String?
    public let role: MemberRole
}

/// What a verified embedded sign-in token (CONTRACT §8, `/sso/jwt`) says: the signature is
/// checked by the caller; ``PeopleService/signInEmbedded(_:requestID:)`` checks the rest.
public struct EmbeddedIdentity: Sendable {
    /// The host SaaS's user id (`sub`).
    public var subject: String
    public var email: String
    public var name: String
    /// An `org_` id.
    public var org: String
    /// The role as sent; one of the four member roles or the sign-in fails.
    public var role: String
    /// `iat` and `exp`, in milliseconds since 1970.
    public var issuedAt: Int64
    public var expiresAt: Int64
    /// `jti`: accepted once.
    public var tokenID: String

    public init(subject: String, email: String, name: String, org: String, role: String, issuedAt: Int64, expiresAt: Int64, tokenID: String) {
        self.subject = subject
        self.email = email
        self.name = name
        self.org = org
        self.role = role
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.tokenID = tokenID
    }
}

/// People and their browser sessions (CONTRACT §8): invitations, passwords (Argon2id), sign-in
/// with a per-email and per-address throttle shared by the nodes, sessions kept as digests with a sliding expiry.
public struct PeopleService: Sendable {
    public let database: Database
    let clock: WallClock
    let publicURL: String
    let throttle: SignInThrottle
    /// An invitation link works this long.
    public static let invitationLifetime: Int64 = 7 * 24 * 3600 * 1000
    /// A session unused this long ends; each use slides it.
    public static let idleLifetime: Int64 = 12 * 3600 * 1000
    /// A session ends this long after sign-in whatever its use.
    public static let absoluteLifetime: Int64 = 14 * 24 * 3600 * 1000
    /// The expiry is written again only when it moved this much, so a busy page is not a write per request.
    static let renewStep: Int64 = 5 * 60 * 1000

    public init(database: Database, clock: WallClock, publicURL: String) {
        self.database = database
        self.clock = clock
        self.publicURL = publicURL
        self.throttle = SignInThrottle(database: database)
    }

    // MARK: Invitations

    /// Creates an invitation in `orgID` (operator; owner or admin for roles up to their own);
    /// answers it with the link, shown once.
    public func invite(in orgID: String, email: String, role: MemberRole, by caller: Principal, tenancy: TenancyService,
                       requestID: String? = nil) async throws -> (id: String, url: String, expiresAt: Int64) {
        let org = try await tenancy.org(orgID, visibleTo: caller)
        if case .member(_, _, _, let mine) = caller {
            guard mine >= .admin else { throw APIError.forbidden("Inviting people needs the admin role or higher.") }
            guard role <= mine else { throw APIError.forbidden("You can invite people with roles up to your own (\(mine.rawValue)).") }
        }
        let address = try Self.normalisedEmail(email)
        return try await createInvitation(org: org.id, email: address, role: role, actor: caller.actorID, requestID: requestID)
    }

    private func createInvitation(org: String, email: String?, role: MemberRole, actor: String, requestID: String?) async throws
        -> (id: String, url: String, expiresAt: Int64) {
        let token = BrowserSecret.generate()
        let now = clock.millis
        let record = InvitationRecord(id: RecordID.make("inv"), orgId: org, email: email, role: role.rawValue,
                                      tokenHash: BrowserSecret.digest(token, purpose: "invitation"), createdBy: actor,
                                      createdAt: now, expiresAt: now + Self.invitationLifetime)
        try await database.transaction { db in
            try await PeopleStore.insert(record, on: db)
            try await ActivityLog.record(org: org, actor: actor, action: "invitation.created", target: record.id, requestID: requestID,
                                         details: ["role": .string(role.rawValue)], at: now, on: db)
        }
        return (record.id, "\(publicURL)/invite/\(token)", record.expiresAt)
    }

    /// On a database with no org at all, creates one (enterprise, so every app can be tried) and
    /// an owner invitation without an email; answers its link. `nil` on any later start.
    public func bootstrapFirstOwner() async throws -> String? {
        let now = clock.millis
        let org = OrgRecord(id: RecordID.make("org"), name: "My organisation", plan: Plan.enterprise.rawValue, createdAt: now)
        let created = try await database.transaction { db -> Bool in
            guard try await PeopleStore.orgCount(on: db) == 0 else { return false }
            try await OrgStore.insert(org, on: db)
            try await ActivityLog.record(org: org.id, actor: "startup", action: "org.created", target: org.id, requestID: nil,
                                         details: ["plan": .string(org.plan)], at: now, on: db)
            return true
        }
        guard created else { return nil }
        return try await createInvitation(org: org.id, email: nil, role: .owner, actor: "startup", requestID: nil).url
    }

    /// The invitation a link stands for while it can still be used; `nil` when unknown, used or expired.
    public func invitation(token: String) async throws -> InvitationView? {
        guard let record = try await liveInvitation(token: token) else { return nil }
        let org = try await database.read { try await OrgStore.find(id: record.orgId, on: $0) }
        guard let org, let role = MemberRole(rawValue: record.role) else { return nil }
        return InvitationView(id: record.id, orgName: org.name, email: record.email, role: role)
    }

    private func liveInvitation(token: String) async throws -> InvitationRecord? {
        guard !token.isEmpty, token.utf8.count <= 128 else { return nil }
        let hash = BrowserSecret.digest(token, purpose: "invitation")
        guard let record = try await database.read({ try await PeopleStore.invitation(tokenHash: hash, on: $0) }),
              record.usedAt == nil, record.expiresAt > clock.millis
        else { return nil }
        return record
    }

    /// Uses an invitation: creates the person (or, for an email that already has a password,
    /// checks it), adds the membership and starts a session; answers the session cookie text.
    /// Problems name fields (`name`, `email`, `password`); a used or expired link is 404.
    public func accept(token: String, name: String, email: String?, password: String) async throws -> String {
        guard let invitation = try await liveInvitation(token: token) else { throw APIError.notFound("Invitation") }
        var problems: [APIError.FieldProblem] = []
        let displayName = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if displayName.isEmpty || displayName.count > 200 { problems.append(.init(field: "name", message: "Enter your name (1 to 200 characters).")) }
        var address = invitation.email
        if address == nil {
            do { address = try Self.normalisedEmail(email ?? "") } catch { problems.append(.init(field: "email", message: "Enter a valid email address.")) }
        }
        if password.count < PasswordHash.minimumLength || password.utf8.count > PasswordHash.maximumLength {
            problems.append(.init(field: "password", message: "Use at least \(PasswordHash.minimumLength) characters."))
        }
        guard problems.isEmpty, let address else { throw APIError.fieldProblems(problems) }

        let existing = try await database.read { try await PeopleStore.credential(email: address, on: $0) }
        let hash: String?
        if let existing {
            guard await Self.offload({ PasswordHash.verify(password, against: existing.passwordHash) }) else {
                throw APIError.fieldProblems([.init(field: "password", message: "This email already has an account; enter its password.")])
            }
            hash = nil
        } else {
            hash = await Self.offload { PasswordHash.hash(password) }
        }
        let now = clock.millis
        let sessionToken = BrowserSecret.generate()
        try await database.transaction { db in
            guard try await PeopleStore.consume(invitation: invitation.id, at: now, on: db) else { throw APIError.notFound("Invitation") }
            let principalID: String
            if let existing {
                principalID = existing.principalId
            } else if let hash {
                principalID = RecordID.make("usr")
                try await AccessStore.insert(PrincipalRecord(id: principalID, kind: "user", name: displayName, email: address, createdAt: now), on: db)
                try await PeopleStore.insert(CredentialRecord(principalId: principalID, email: address, passwordHash: hash, updatedAt: now), on: db)
            } else { throw APIError.internalError() }
            if try await PeopleStore.role(of: principalID, in: invitation.orgId, on: db) == nil {
                try await AccessStore.addMembership(org: invitation.orgId, principal: principalID, role: invitation.role, at: now, on: db)
            }
            try await ActivityLog.record(org: invitation.orgId, actor: principalID, action: "invitation.accepted", target: invitation.id,
                                         requestID: nil, details: ["role": .string(invitation.role)], at: now, on: db)
            try await insertSession(token: sessionToken, principal: principalID, org: invitation.orgId, now: now, on: db)
        }
        return sessionToken
    }

    // MARK: Sign-in and sessions

    /// Checks an email and password; answers the new session's cookie text. A wrong pair is 401
    /// `invalid_credentials` (never saying which part); too many failures are 429 `rate_limited`.
    public func signIn(email: String, password: String, clientKey: String) async throws -> String {
        let address = email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let now = clock.millis
        if let wait = try await throttle.refusal(email: address, client: clientKey, now: now) {
            throw APIError(status: 429, code: "rate_limited", title: "Too many attempts",
                           detail: "Too many failed sign-ins; try again in a few minutes.", headers: ["Retry-After": String(wait)])
        }
        let found = password.utf8.count <= PasswordHash.maximumLength && !address.isEmpty && address.utf8.count <= 320
            ? try await database.read({ try await PeopleStore.credential(email: address, on: $0) }) : nil
        // Hash even when no such person exists, so the answer time does not tell.
        let ok = await Self.offload { PasswordHash.verify(password, against: found?.passwordHash ?? Self.decoyHash) } && found != nil
        guard ok, let found else {
            try await throttle.failed(email: address, client: clientKey, now: now)
            throw APIError(status: 401, code: "invalid_credentials", title: "Sign-in failed", detail: "That email and password do not match an account.")
        }
        guard let org = try await database.read({ try await PeopleStore.firstOrg(of: found.principalId, on: $0) }) else {
            try await throttle.failed(email: address, client: clientKey, now: now)
            throw APIError(status: 401, code: "invalid_credentials", title: "Sign-in failed", detail: "That email and password do not match an account.")
        }
        try await throttle.succeeded(email: address)
        let token = BrowserSecret.generate()
        try await database.transaction { db in
            try await insertSession(token: token, principal: found.principalId, org: org, now: now, on: db)
        }
        return token
    }

    /// A token of embedded sign-in lives at most this long (`exp` - `iat`).
    public static let embeddedTokenLifetime: Int64 = 5 * 60 * 1000
    /// How far in the future `iat` may be (clocks of the host and this server differ a little).
    static let embeddedClockSkew: Int64 = 60 * 1000

    /// Embedded sign-in with an identity whose signature the caller verified: checks times, the
    /// single use of `jti`, the org and the role; creates or updates the person (found by `sub`,
    /// else by email) and the membership; answers the new session's cookie text. Every refusal is
    /// 401 `sso_failed` and leaves nothing behind.
    public func signInEmbedded(_ identity: EmbeddedIdentity, requestID: String? = nil) async throws -> String {
        @Sendable func refuse(_ detail: String) -> APIError {
            APIError(status: 401, code: "sso_failed", title: "Sign-in link not accepted", detail: detail)
        }
        let now = clock.millis
        guard identity.expiresAt > now else { throw refuse("The sign-in link has expired. Go back to the application and open the marketplace again.") }
        guard identity.expiresAt > identity.issuedAt, identity.expiresAt - identity.issuedAt <= Self.embeddedTokenLifetime,
              identity.issuedAt <= now + Self.embeddedClockSkew
        else { throw refuse("The sign-in link may live at most 5 minutes (exp - iat).") }
        guard let role = MemberRole(rawValue: identity.role) else { throw refuse("The sign-in link names a role Mercato does not know.") }
        let subject = identity.subject
        guard !subject.isEmpty, subject.utf8.count <= 255, !identity.tokenID.isEmpty, identity.tokenID.utf8.count <= 255 else {
            throw refuse("The sign-in link lacks a subject or a token id.")
        }
        let name = identity.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 200, let email = try? Self.normalisedEmail(identity.email) else {
            throw refuse("The sign-in link lacks a name or a valid email.")
        }
        guard identity.org.hasPrefix("org_"), identity.org.utf8.count <= 64 else { throw refuse("The sign-in link names no organisation of this marketplace.") }
        let token = BrowserSecret.generate()
        try await database.transaction { db in
            guard try await OrgStore.find(id: identity.org, on: db) != nil else {
                throw refuse("The sign-in link names no organisation of this marketplace.")
            }
            guard try await PeopleStore.useSSOToken(jti: identity.tokenID, expiresAt: identity.expiresAt, on: db) else {
                throw refuse("This sign-in link was already used. Go back to the application and open the marketplace again.")
            }
            let principal: String
            if let linked = try await PeopleStore.principal(ssoSubject: subject, on: db) {
                principal = linked
                try await PeopleStore.updatePerson(principal, name: name, email: email, on: db)
            } else if let known = try await PeopleStore.person(email: email, on: db) {
                principal = known
                try await PeopleStore.updatePerson(principal, name: name, email: email, on: db)
                try await PeopleStore.linkSSOSubject(subject, to: principal, at: now, on: db)
            } else {
                principal = RecordID.make("usr")
                try await AccessStore.insert(PrincipalRecord(id: principal, kind: "user", name: name, email: email, createdAt: now), on: db)
                try await PeopleStore.linkSSOSubject(subject, to: principal, at: now, on: db)
            }
            switch try await PeopleStore.role(of: principal, in: identity.org, on: db) {
            case nil:
                try await AccessStore.addMembership(org: identity.org, principal: principal, role: role.rawValue, at: now, on: db)
            case let held? where held != role.rawValue:
                try await PeopleStore.setRole(role.rawValue, of: principal, in: identity.org, on: db)
            default:
                break
            }
            try await ActivityLog.record(org: identity.org, actor: principal, action: "member.signed_in_sso", target: principal, requestID: requestID,
                                         details: ["role": .string(role.rawValue)], at: now, on: db)
            try await insertSession(token: token, principal: principal, org: identity.org, now: now, on: db)
        }
        return token
    }

    private func insertSession(token: String, principal: String, org: String, now: Int64, on db: any SQLDatabase) async throws {
        try await PeopleStore.insertSession(id: RecordID.make("ses"), tokenHash: BrowserSecret.digest(token, purpose: "session"),
                                            principal: principal, org: org, createdAt: now, expiresAt: now + Self.idleLifetime,
                                            endsAt: now + Self.absoluteLifetime, on: db)
    }

    /// The session a cookie stands for, sliding its expiry; `nil` when unknown, expired or the
    /// membership is gone.
    public func session(cookie: String) async throws -> BrowserSession? {
        guard !cookie.isEmpty, cookie.utf8.count <= 128 else { return nil }
        let hash = BrowserSecret.digest(cookie, purpose: "session")
        let now = clock.millis
        guard let row = try await database.read({ try await PeopleStore.session(tokenHash: hash, now: now, on: $0) }),
              let role = MemberRole(rawValue: row.role), let plan = Plan(rawValue: row.orgPlan)
        else { return nil }
        let slid = min(now + Self.idleLifetime, row.endsAt)
        if slid - row.expiresAt >= Self.renewStep {
            try await database.transaction { try await PeopleStore.renew(session: row.id, expiresAt: slid, on: $0) }
        }
        return BrowserSession(id: row.id, principal: .member(tokenID: row.id, principalID: row.principalId, orgID: row.orgId, role: role),
                              name: row.name, email: row.email, orgID: row.orgId, orgName: row.orgName, plan: plan, role: role)
    }

    /// Ends the session a cookie stands for (nothing happens for an unknown cookie).
    public func signOut(cookie: String) async throws {
        guard !cookie.isEmpty, cookie.utf8.count <= 128 else { return }
        let hash = BrowserSecret.digest(cookie, purpose: "session")
        try await database.transaction { try await PeopleStore.deleteSession(tokenHash: hash, on: $0) }
    }

    /// The names of those of `ids` who are members of the caller's org (at most 200 ids); ids of
    /// anyone else are left out, so a page shows another org's names never.
    public func memberNames(_ ids: Set<String>, visibleTo caller: Principal) async throws -> [String: String] {
        guard case .member(_, _, let org, _) = caller else { return [:] }
        let wanted = Array(ids.prefix(200))
        return try await database.read { try await PeopleStore.memberNames(org: org, ids: wanted, on: $0) }
    }

    // MARK: Helpers

    static func normalisedEmail(_ text: String) throws -> String {
        let address = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard address.utf8.count <= 320, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              !address.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" })
        else { throw APIError.fieldProblems([.init(field: "email", message: "must be an email address")]) }
        return address
    }

    /// A hash of a random password, verified against when the email is unknown.
    static let decoyHash = PasswordHash.hash(BrowserSecret.generate())

    /// Runs slow hashing on NIO's blocking pool, not on the executor that serves requests.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        if let value = try? await NIOThreadPool.singleton.runIfActive(work) { return value }
        return work()
    }
}

/// Failed sign-ins counted per email and per client address in storage (`sign_in_failures`,
/// keyed by digests), so every node sees every node's failures: past the limit within the
/// window, attempts are refused until the oldest failure leaves the window.
struct SignInThrottle: Sendable {
    static let window: Int64 = 15 * 60 * 1000
    static let perEmail = 5
    static let perClient = 20
    let database: Database

    private static func keys(email: String, client: String) -> (email: String, client: String) {
        ("e:" + BrowserSecret.digest(email, purpose: "sign-in-email"), "c:" + BrowserSecret.digest(client, purpose: "sign-in-client"))
    }

    /// Seconds to wait when refused, else `nil`.
    func refusal(email: String, client: String, now: Int64) async throws -> Int? {
        let keys = Self.keys(email: email, client: client)
        var wait: Int64 = 0
        for (key, limit) in [(keys.email, Self.perEmail), (keys.client, Self.perClient)] {
            let recent = try await database.read { try await PeopleStore.signInFailures(key: key, since: now - Self.window, on: $0) }
            if recent.count >= limit, let oldest = recent.oldest { wait = max(wait, oldest + Self.window - now) }
        }
        return wait > 0 ? Int((wait + 999) / 1000) : nil
    }

    func failed(email: String, client: String, now: Int64) async throws {
        let keys = Self.keys(email: email, client: client)
        try await database.transaction { try await PeopleStore.recordSignInFailure(keys: [keys.email, keys.client], at: now, on: $0) }
    }

    func succeeded(email: String) async throws {
        let key = Self.keys(email: email, client: "").email
        try await database.transaction { try await PeopleStore.clearSignInFailures(key: key, on: $0) }
    }
}
