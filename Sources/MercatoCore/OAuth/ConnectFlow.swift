import Foundation
import Logging
import MercatoCrypto
import MercatoHooks
public import MercatoStorage
import Metrics
import SQLKit

/// The connect flow of CONTRACT §6, for an org admin in a browser: a single-use state bound to
/// the admin and to a cookie, PKCE S256, the provider's callback, the connection stored with
/// its tokens sealed; then reading the connection and disconnecting it. Install state moves go
/// through ``InstallService`` (``InstallService/connected(_:connection:account:scopes:by:requestID:on:)``
/// and ``InstallService/connectionLost(_:_:_:reason:actorID:requestID:on:)``); grants left
/// behind go to the ``ConnectionRevoker``.
public final class ConnectFlow: Sendable {
    let oauth: OAuthDependencies
    let redirectURI: String
    let returnURL: String
    let cookiePath: String
    let secureCookie: Bool

    public static let stateLifetime: Int64 = 10 * 60 * 1000

    public init(_ oauth: OAuthDependencies) {
        self.oauth = oauth
        let settings = oauth.settings
        self.redirectURI = settings.publicURL + "/api/v1/oauth/callback"
        self.returnURL = settings.oauthReturnURL
        let base = URL(string: settings.publicURL)
        self.cookiePath = (base?.path ?? "") + "/api/v1/oauth/callback"
        self.secureCookie = base?.scheme == "https"
    }

    // MARK: Connect

    /// Where the admin's browser goes, and the cookie that binds the flow to that browser.
    public struct Start: Sendable {
        public var location: String
        public var setCookie: String
    }

    /// Starts a connect flow for an install (admin+): a single-use state bound to the caller
    /// and to a cookie, PKCE S256 unless the provider disables it.
    public func start(_ installID: String, by caller: Principal) async throws -> Start {
        let org = try caller.org(atLeast: .admin, to: "Connecting an account")
        let (install, requirement) = try await oauthInstall(installID, org: org)
        guard install.status != .disabled else {
            throw APIError(status: 409, code: "install_inactive", title: "Install inactive", detail: "Install \(installID) is disabled; enable it before connecting.")
        }
        let provider = try await oauth.providers.resolve(requirement.provider)
        let state = Self.randomText()
        let browser = Self.randomText()
        let verifier = provider.definition.pkce ? Self.randomText() : nil
        let now = oauth.clock.millis
        let record = OAuthStateRecord(id: RecordID.make("ost", millis: now), stateHash: Self.digest(state, "state"), browserHash: Self.digest(browser, "browser"),
                                      orgId: install.orgId, installId: install.id, providerKey: provider.definition.key,
                                      startedBy: caller.actorID, createdAt: now, expiresAt: now + Self.stateLifetime)
        try await oauth.database.transaction { db in
            try await OAuthStateStore.insert(record, on: db)
            if let verifier { try await self.oauth.secrets.put(verifier, for: ConnectionTokens.verifier(record), on: db) }
        }
        let scopes = requirement.scopes.isEmpty ? provider.definition.scopes : requirement.scopes
        var query = [("response_type", "code"), ("client_id", provider.clientID), ("redirect_uri", redirectURI), ("state", state)]
        if !scopes.isEmpty { query.append(("scope", scopes.joined(separator: provider.definition.scopeSeparator))) }
        if let verifier {
            query += [("code_challenge", Data(Digest.sha256(Array(verifier.utf8))).base64URLEncodedString()), ("code_challenge_method", "S256")]
        }
        query += provider.definition.authorizeParams.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let authorize = provider.definition.authorizeURL
        let location = authorize + (authorize.contains("?") ? "&" : "?") + query.map { OAuthClient.queryEncode($0.0) + "=" + OAuthClient.queryEncode($0.1) }.joined(separator: "&")
        var cookie = "\(Self.cookieName(install.id))=\(browser); Path=\(cookiePath); Max-Age=\(Self.stateLifetime / 1000); HttpOnly; SameSite=Lax"
        if secureCookie { cookie += "; Secure" }
        Counter(label: "mercato_oauth_flows_total", dimensions: [("provider", provider.definition.key), ("outcome", "started")]).increment()
        return Start(location: location, setCookie: cookie)
    }

    /// The end of a connect flow: where the browser goes, and the cookie to clear.
    public struct Finish: Sendable {
        public var location: String
        public var clearCookie: String?
    }

    /// Finishes a connect flow from the provider's redirect. Every outcome is a redirect to the
    /// return URL with `result=connected` or `error=<code>`; on any error nothing is stored.
    public func finish(query: [String: String], cookie: @Sendable (String) -> String?, requestID: String) async -> Finish {
        var installID: String?
        do {
            let state = try await consumeState(query["state"], cookie: cookie)
            installID = state.record.installId
            if let error = query["error"] {
                throw FlowFailure(error == "access_denied" ? "access_denied" : "provider_error", logged: OAuthClient.safeCode(error))
            }
            guard let code = query["code"], !code.isEmpty else { throw FlowFailure("provider_error", logged: "no code in the redirect") }
            let provider: ResolvedProvider
            do { provider = try await oauth.providers.resolve(state.record.providerKey) } catch { throw FlowFailure("provider_not_configured") }
            let tokens: TokenSet
            do {
                tokens = try await oauth.client.exchange(code: code, verifier: state.verifier, redirectURI: redirectURI, provider: provider)
            } catch {
                throw FlowFailure("exchange_failed", logged: error.code)
            }
            let account: (id: String?, name: String?)
            do {
                account = try await oauth.client.account(accessToken: tokens.accessToken, provider: provider)
            } catch {
                await oauth.revoker.revoke(access: tokens.accessToken, refresh: tokens.refreshToken, provider: provider)
                throw FlowFailure("account_lookup_failed", logged: error.code)
            }
            let previousRefresh = try await store(tokens, account: account, state: state.record, provider: provider, requestID: requestID)
            if let previousRefresh, previousRefresh != tokens.refreshToken {
                // A reconnect replaces the grant: the old one is given back.
                await oauth.revoker.revoke(access: nil, refresh: previousRefresh, provider: provider)
            }
            Counter(label: "mercato_oauth_flows_total", dimensions: [("provider", provider.definition.key), ("outcome", "connected")]).increment()
            oauth.logger.info("oauth connection made", metadata: ["install_id": "\(state.record.installId)", "provider": "\(provider.definition.key)"])
            return Finish(location: landing(["result": "connected", "install_id": state.record.installId]),
                          clearCookie: clearCookie(state.record.installId))
        } catch let failure as FlowFailure {
            Counter(label: "mercato_oauth_flows_total", dimensions: [("provider", "-"), ("outcome", failure.code)]).increment()
            oauth.logger.notice("oauth connection failed", metadata: ["error": "\(failure.code)", "reason": "\(failure.logged ?? failure.code)",
                                                                 "install_id": "\(installID ?? "-")", "request_id": "\(requestID)"])
            var params = ["error": failure.code]
            if let installID { params["install_id"] = installID }
            return Finish(location: landing(params), clearCookie: installID.map(clearCookie))
        } catch {
            oauth.logger.error("oauth callback failed", metadata: ["error_type": "\(type(of: error))", "request_id": "\(requestID)"])
            var params = ["error": "server_error"]
            if let installID { params["install_id"] = installID }
            return Finish(location: landing(params), clearCookie: installID.map(clearCookie))
        }
    }

    /// The codes a connect flow can end with, and what the landing page tells the admin.
    public static let flowErrors: [String: String] = [
        "access_denied": "Access was declined at the provider. Nothing was connected.",
        "state_unknown": "This sign-in was not started by Mercato, or is too old to recognise. Start the connection again.",
        "state_expired": "The sign-in took longer than 10 minutes. Start the connection again.",
        "state_replayed": "This sign-in was already used. Start the connection again.",
        "browser_mismatch": "The sign-in finished in a different browser from the one that started it. Start again in one browser.",
        "provider_error": "The provider reported an error. Start the connection again, or ask the operator to check the provider.",
        "provider_not_configured": "The operator has not finished setting up this provider.",
        "exchange_failed": "The provider did not accept the sign-in. Start the connection again.",
        "account_lookup_failed": "The provider did not say which account was connected. Nothing was connected.",
        "install_unavailable": "The app was uninstalled or disabled while you signed in.",
        "server_error": "Mercato could not finish the connection. Try again shortly.",
    ]

    struct FlowFailure: Error {
        var code: String
        var logged: String?
        init(_ code: String, logged: String? = nil) {
            self.code = code
            self.logged = logged
        }
    }

    /// Checks the browser binding, expiry and single use, consumes the state and takes its
    /// PKCE verifier.
    private func consumeState(_ state: String?, cookie: (String) -> String?) async throws -> (record: OAuthStateRecord, verifier: String?) {
        guard let state, !state.isEmpty, state.utf8.count <= 256 else { throw FlowFailure("state_unknown") }
        guard let record = try await oauth.database.read({ try await OAuthStateStore.find(stateHash: Self.digest(state, "state"), on: $0) }) else {
            throw FlowFailure("state_unknown")
        }
        // A used or expired state says so (the callback cleared the cookie, so a replay has none);
        // otherwise the browser must be the one that started: a stolen redirect URL arriving
        // elsewhere does not even use the state up.
        if record.usedAt != nil { throw FlowFailure("state_replayed") }
        let now = oauth.clock.millis
        if now > record.expiresAt { throw FlowFailure("state_expired") }
        guard let browser = cookie(Self.cookieName(record.installId)),
              ConstantTime.equals(Array(Self.digest(browser, "browser").utf8), Array(record.browserHash.utf8))
        else { throw FlowFailure("browser_mismatch") }
        return try await oauth.database.transaction { db in
            guard try await OAuthStateStore.consume(id: record.id, at: now, on: db) else { throw FlowFailure("state_replayed") }
            let verifier = try await self.oauth.secrets.get(ConnectionTokens.verifier(record), on: db)
            try await self.oauth.secrets.deleteAll(owner: record.id, on: db)
            return (record, verifier)
        }
    }

    /// Stores a new connection in one transaction; answers the refresh token it replaced.
    private func store(_ tokens: TokenSet, account: (id: String?, name: String?), state: OAuthStateRecord, provider: ResolvedProvider,
                       requestID: String) async throws -> String? {
        try await oauth.database.transaction { db in
            guard var install = try await InstallStore.live(id: state.installId, on: db, forUpdate: true), install.orgId == state.orgId,
                  install.status != .disabled
            else { throw FlowFailure("install_unavailable") }
            let previous = try await ConnectionStore.find(install: install.id, on: db)
            let previousRefresh = previous == nil ? nil : try await self.oauth.secrets.get(ConnectionTokens.refresh(install), on: db)
            let now = self.oauth.clock.millis
            let scopes = tokens.scopes ?? provider.definition.scopes
            let record = ConnectionRecord(
                id: previous?.id ?? RecordID.make("con", millis: now), installId: install.id, orgId: install.orgId, providerKey: provider.definition.key,
                status: .connected, accountId: account.id, accountName: account.name, scopes: scopes,
                expiresAt: tokens.expiresIn.map { now + Int64($0) * 1000 }, obtainedAt: now, tokenVersion: 1,
                connectedBy: state.startedBy, connectedAt: now, updatedAt: now
            )
            try await ConnectionStore.upsert(record, on: db)
            try await self.oauth.secrets.put(tokens.accessToken, for: ConnectionTokens.access(install), on: db)
            if let refresh = tokens.refreshToken {
                try await self.oauth.secrets.put(refresh, for: ConnectionTokens.refresh(install), on: db)
            } else {
                try await SealedValueStore.delete(owner: install.id, purpose: ConnectionTokens.refresh(install).purpose, on: db)
            }
            try await self.oauth.installs.connected(&install, connection: record, account: account, scopes: scopes, by: state.startedBy, requestID: requestID, on: db)
            return previousRefresh
        }
    }

    // MARK: Read and disconnect

    /// An install's connection as the API shows it: never a token.
    public struct View: Sendable {
        public var installID: String
        public var provider: String
        public var record: ConnectionRecord?
        public var scopes: [String]
        public var status: String { record?.status.rawValue ?? "not_connected" }
    }

    public func connection(_ installID: String, by caller: Principal) async throws -> View {
        let org = try caller.org(atLeast: .admin, to: "Reading an install's connection")
        let (install, requirement) = try await oauthInstall(installID, org: org)
        let record = try await oauth.database.read { try await ConnectionStore.find(install: install.id, on: $0) }
        return View(installID: install.id, provider: record?.providerKey ?? requirement.provider, record: record, scopes: record?.scopes ?? [])
    }

    /// Disconnects (admin+): destroys the tokens and the connection, revokes the grant at the
    /// provider when it has a revocation URL. Answers whether the provider confirmed.
    public func disconnect(_ installID: String, by actor: InstallService.Actor) async throws -> Bool {
        let org = try actor.principal.org(atLeast: .admin, to: "Disconnecting an account")
        let (install, _) = try await oauth.installs.installAndManifest(installID, org: org)
        let taken: ConnectionRevoker.Grant? = try await oauth.database.transaction { db in
            guard var install = try await InstallStore.live(id: install.id, on: db, forUpdate: true),
                  let record = try await ConnectionStore.find(install: install.id, on: db) else { return nil }
            try await ConnectionStore.delete(install: install.id, on: db)
            return try await self.oauth.installs.connectionLost("connection.disconnected", &install, record, reason: nil, actorID: actor.principal.actorID,
                                                     requestID: actor.requestID, on: db)
        }
        guard let taken else {
            throw APIError(status: 409, code: "not_connected", title: "Not connected", detail: "Install \(installID) has no connected account.")
        }
        return await oauth.revoker.revoke(taken)
    }


    // MARK: Internals

    private func oauthInstall(_ installID: String, org: String) async throws -> (InstallRecord, AppManifest.OAuthRequirement) {
        let (install, manifest) = try await oauth.installs.installAndManifest(installID, org: org)
        guard let requirement = manifest.oauth else {
            throw APIError(status: 409, code: "oauth_not_used", title: "No OAuth connection",
                           detail: "`\(install.appKey)` \(install.version) does not connect to an outside account.")
        }
        return (install, requirement)
    }

    private func landing(_ params: [String: String]) -> String {
        let query = params.sorted { $0.key < $1.key }.map { OAuthClient.queryEncode($0.key) + "=" + OAuthClient.queryEncode($0.value) }.joined(separator: "&")
        return returnURL + (returnURL.contains("?") ? "&" : "?") + query
    }

    private func clearCookie(_ installID: String) -> String {
        "\(Self.cookieName(installID))=; Path=\(cookiePath); Max-Age=0; HttpOnly; SameSite=Lax" + (secureCookie ? "; Secure" : "")
    }

    static func cookieName(_ installID: String) -> String { "mercato_oauth_\(installID)" }

    /// 256 random bits as URL-safe base64 (43 characters: also a valid PKCE verifier).
    static func randomText() -> String { Data(SecureRandom.bytes(32)).base64URLEncodedString() }

    /// What is stored of a state or browser value: a domain-separated BLAKE2b digest.
    static func digest(_ text: String, _ kind: String) -> String {
        Digest.hex(Digest.blake2b(Array("mercato.oauth-\(kind).v1:\(text)".utf8)))
    }
}
