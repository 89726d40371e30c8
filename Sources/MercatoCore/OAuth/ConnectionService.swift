import Foundation
public import Logging
import MercatoCrypto
public import MercatoHooks
public import MercatoStorage
import Metrics
import SQLKit
import Synchronization

/// OAuth connections of installs (CONTRACT §6): the connect flow (state, browser binding,
/// PKCE), sealed token storage, refresh with one refresh per connection at a time across
/// requests and nodes, and disconnect with revocation. Tokens live only in `sealed_values`
/// (owner = the install, so an uninstall destroys them) and are never logged or shown.
public final class ConnectionService: Sendable {
    let database: Database
    let secrets: SecretStore
    let providers: ProviderService
    let clock: WallClock
    let logger: Logger
    let client: OAuthClient
    let redirectURI: String
    let returnURL: String
    let cookiePath: String
    let secureCookie: Bool
    /// Refresh this long before expiry (or at half the token's lifetime when that is sooner).
    let margin: Int64
    /// How long a refresh lease lasts: longer than the provider call can take.
    let leaseMillis: Int64
    /// How long a request waits for another node's refresh before giving up.
    let waitMillis: Int64
    /// This process, in lease owner names.
    let node = RecordID.make("node")
    /// One refresh per connection in this process; callers share its result.
    private let flights = Mutex<[String: Task<AccessToken, any Error>]>([:])
    /// Refresh tokens a provider rotated whose storing failed, by install, with the token
    /// version they replace: the next refresh here uses them (the stored one is already spent).
    private let unsaved = Mutex<[String: (version: Int, refreshToken: String)]>([:])

    public static let stateLifetime: Int64 = 10 * 60 * 1000
    static let backoff: [Int64] = [30, 60, 120, 300, 600, 900].map { $0 * 1000 }

    public init(database: Database, secrets: SecretStore, providers: ProviderService, settings: Settings, clock: WallClock, logger: Logger) {
        self.database = database
        self.secrets = secrets
        self.providers = providers
        self.clock = clock
        self.logger = logger
        self.client = OAuthClient(timeout: .seconds(settings.oauthTimeoutSeconds))
        self.redirectURI = settings.publicURL + "/api/v1/oauth/callback"
        self.returnURL = settings.oauthReturnURL
        let base = URL(string: settings.publicURL)
        self.cookiePath = (base?.path ?? "") + "/api/v1/oauth/callback"
        self.secureCookie = base?.scheme == "https"
        self.margin = Int64(settings.oauthRefreshMarginSeconds) * 1000
        self.leaseMillis = Int64(settings.oauthTimeoutSeconds * 2 + 5) * 1000
        self.waitMillis = Int64(settings.oauthTimeoutSeconds + 5) * 1000
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
        let (install, oauth) = try await oauthInstall(installID, org: org)
        guard install.status != "disabled" else {
            throw APIError(status: 409, code: "install_inactive", title: "Install inactive", detail: "Install \(installID) is disabled; enable it before connecting.")
        }
        let provider = try await providers.resolve(oauth.provider)
        let state = Self.randomText()
        let browser = Self.randomText()
        let verifier = provider.definition.pkce ? Self.randomText() : nil
        let now = clock.millis
        let record = OAuthStateRecord(id: RecordID.make("ost", millis: now), stateHash: Self.digest(state, "state"), browserHash: Self.digest(browser, "browser"),
                                      orgId: install.orgId, installId: install.id, providerKey: provider.definition.key,
                                      startedBy: caller.actorID, createdAt: now, expiresAt: now + Self.stateLifetime)
        try await database.transaction { db in
            try await OAuthStateStore.insert(record, on: db)
            if let verifier { try await secrets.put(verifier, for: Self.verifierContext(record), on: db) }
        }
        let scopes = oauth.scopes.isEmpty ? provider.definition.scopes : oauth.scopes
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
            do { provider = try await providers.resolve(state.record.providerKey) } catch { throw FlowFailure("provider_not_configured") }
            let tokens: TokenSet
            do {
                tokens = try await client.exchange(code: code, verifier: state.verifier, redirectURI: redirectURI, provider: provider)
            } catch {
                throw FlowFailure("exchange_failed", logged: error.code)
            }
            let account: (id: String?, name: String?)
            do {
                account = try await client.account(accessToken: tokens.accessToken, provider: provider)
            } catch {
                await revokeAll(access: tokens.accessToken, refresh: tokens.refreshToken, provider: provider)
                throw FlowFailure("account_lookup_failed", logged: error.code)
            }
            let previousRefresh = try await store(tokens, account: account, state: state.record, provider: provider, requestID: requestID)
            if let previousRefresh, previousRefresh != tokens.refreshToken {
                // A reconnect replaces the grant: the old one is given back.
                await revokeAll(access: nil, refresh: previousRefresh, provider: provider)
            }
            Counter(label: "mercato_oauth_flows_total", dimensions: [("provider", provider.definition.key), ("outcome", "connected")]).increment()
            logger.info("oauth connection made", metadata: ["install_id": "\(state.record.installId)", "provider": "\(provider.definition.key)"])
            return Finish(location: landing(["result": "connected", "install_id": state.record.installId]),
                          clearCookie: clearCookie(state.record.installId))
        } catch let failure as FlowFailure {
            Counter(label: "mercato_oauth_flows_total", dimensions: [("provider", "-"), ("outcome", failure.code)]).increment()
            logger.notice("oauth connection failed", metadata: ["error": "\(failure.code)", "reason": "\(failure.logged ?? failure.code)",
                                                                 "install_id": "\(installID ?? "-")", "request_id": "\(requestID)"])
            var params = ["error": failure.code]
            if let installID { params["install_id"] = installID }
            return Finish(location: landing(params), clearCookie: installID.map(clearCookie))
        } catch {
            logger.error("oauth callback failed", metadata: ["error_type": "\(type(of: error))", "request_id": "\(requestID)"])
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
        guard let record = try await database.read({ try await OAuthStateStore.find(stateHash: Self.digest(state, "state"), on: $0) }) else {
            throw FlowFailure("state_unknown")
        }
        // A used or expired state says so (the callback cleared the cookie, so a replay has none);
        // otherwise the browser must be the one that started: a stolen redirect URL arriving
        // elsewhere does not even use the state up.
        if record.usedAt != nil { throw FlowFailure("state_replayed") }
        let now = clock.millis
        if now > record.expiresAt { throw FlowFailure("state_expired") }
        guard let browser = cookie(Self.cookieName(record.installId)),
              ConstantTime.equals(Array(Self.digest(browser, "browser").utf8), Array(record.browserHash.utf8))
        else { throw FlowFailure("browser_mismatch") }
        return try await database.transaction { db in
            guard try await OAuthStateStore.consume(id: record.id, at: now, on: db) else { throw FlowFailure("state_replayed") }
            let verifier = try await secrets.get(Self.verifierContext(record), on: db)
            try await secrets.deleteAll(owner: record.id, on: db)
            return (record, verifier)
        }
    }

    /// Stores a new connection in one transaction; answers the refresh token it replaced.
    private func store(_ tokens: TokenSet, account: (id: String?, name: String?), state: OAuthStateRecord, provider: ResolvedProvider,
                       requestID: String) async throws -> String? {
        try await database.transaction { db in
            guard var install = try await InstallStore.live(id: state.installId, on: db, forUpdate: true), install.orgId == state.orgId,
                  install.status != "disabled"
            else { throw FlowFailure("install_unavailable") }
            let previous = try await ConnectionStore.find(install: install.id, on: db)
            let previousRefresh = previous == nil ? nil : try await secrets.get(Self.refreshContext(install), on: db)
            let now = clock.millis
            let scopes = tokens.scopes ?? provider.definition.scopes
            let record = ConnectionRecord(
                id: previous?.id ?? RecordID.make("con", millis: now), installId: install.id, orgId: install.orgId, providerKey: provider.definition.key,
                status: "connected", accountId: account.id, accountName: account.name, scopes: try InstallService.json(scopes),
                expiresAt: tokens.expiresIn.map { now + Int64($0) * 1000 }, obtainedAt: now, tokenVersion: 1,
                connectedBy: state.startedBy, connectedAt: now, updatedAt: now
            )
            try await ConnectionStore.upsert(record, on: db)
            try await secrets.put(tokens.accessToken, for: Self.accessContext(install), on: db)
            if let refresh = tokens.refreshToken {
                try await secrets.put(refresh, for: Self.refreshContext(install), on: db)
            } else {
                try await SealedValueStore.delete(owner: install.id, purpose: Self.refreshContext(install).purpose, on: db)
            }
            if install.status == "pending_oauth" {
                install.status = "active"
                install.updatedAt = now
                try await InstallStore.update(install, on: db)
            }
            try await InstallService.writeChange(
                "connection.connected", install,
                extra: ["connection_id": .string(record.id), "provider": .string(record.providerKey), "account_id": account.id.map(JSONValue.string) ?? .null,
                        "account_name": account.name.map(JSONValue.string) ?? .null, "scopes": .array(scopes.map(JSONValue.string))],
                actorID: state.startedBy, requestID: requestID,
                details: ["provider": .string(record.providerKey), "account_id": account.id.map(JSONValue.string) ?? .null], at: now, on: db
            )
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
        public var status: String { record?.status ?? "not_connected" }
    }

    public func connection(_ installID: String, by caller: Principal) async throws -> View {
        let org = try caller.org(atLeast: .admin, to: "Reading an install's connection")
        let (install, oauth) = try await oauthInstall(installID, org: org)
        let record = try await database.read { try await ConnectionStore.find(install: install.id, on: $0) }
        return View(installID: install.id, provider: record?.providerKey ?? oauth.provider, record: record,
                    scopes: try record.map { try InstallService.strings($0.scopes) } ?? [])
    }

    /// Disconnects (admin+): destroys the tokens and the connection, revokes the grant at the
    /// provider when it has a revocation URL. Answers whether the provider confirmed.
    public func disconnect(_ installID: String, by actor: InstallService.Actor) async throws -> Bool {
        let org = try actor.principal.org(atLeast: .admin, to: "Disconnecting an account")
        let (install, _) = try await installAndManifest(installID, org: org)
        let now = clock.millis
        let taken: (String?, String?, String)? = try await database.transaction { db in
            guard var install = try await InstallStore.live(id: install.id, on: db, forUpdate: true),
                  let record = try await ConnectionStore.find(install: install.id, on: db) else { return nil }
            let access = try await secrets.get(Self.accessContext(install), on: db)
            let refresh = try await secrets.get(Self.refreshContext(install), on: db)
            try await ConnectionStore.delete(install: install.id, on: db)
            try await Self.connectionLost("connection.disconnected", &install, record, reason: nil, actorID: actor.principal.actorID,
                                          requestID: actor.requestID, at: now, on: db)
            return (access, refresh, record.providerKey)
        }
        guard let (access, refresh, providerKey) = taken else {
            throw APIError(status: 409, code: "not_connected", title: "Not connected", detail: "Install \(installID) has no connected account.")
        }
        guard let provider = try? await providers.resolve(providerKey) else { return false }
        return await revokeAll(access: access, refresh: refresh, provider: provider)
    }

    /// Uninstalls through ``InstallService`` and then gives the install's grant back to the
    /// provider (the tokens are destroyed with the install either way).
    public func uninstall(_ installID: String, installs: InstallService, by actor: InstallService.Actor) async throws {
        try await revokingLeftBehind(installID, by: actor) { try await installs.uninstall(installID, by: actor) }
    }

    /// Upgrades through ``InstallService``; when the new version drops or changes the OAuth
    /// provider, the old connection is destroyed in the upgrade and its grant given back here.
    public func upgrade(_ installID: String, to version: String, acceptScopes: [String], config: [String: JSONValue], installs: InstallService,
                        by actor: InstallService.Actor) async throws -> InstallService.View {
        try await revokingLeftBehind(installID, by: actor) {
            try await installs.upgrade(installID, to: version, acceptScopes: acceptScopes, config: config, by: actor)
        }
    }

    /// Runs `change`, then revokes at the provider the tokens the install held before it when
    /// `change` destroyed its connection.
    private func revokingLeftBehind<R>(_ installID: String, by actor: InstallService.Actor, _ change: () async throws -> R) async throws -> R {
        let org = try actor.principal.org(atLeast: .admin, to: "Installing and changing apps")
        let held: (String?, String?, String)? = try? await database.read { db in
            guard let install = try await InstallStore.live(id: installID, on: db), install.orgId == org,
                  let record = try await ConnectionStore.find(install: install.id, on: db) else { return nil }
            return (try await secrets.get(Self.accessContext(install), on: db), try await secrets.get(Self.refreshContext(install), on: db), record.providerKey)
        }
        let result = try await change()
        guard let (access, refresh, key) = held, access != nil || refresh != nil else { return result }
        let gone = (try? await database.read { try await ConnectionStore.find(install: installID, on: $0) == nil }) ?? false
        if gone, let provider = try? await providers.resolve(key) {
            await revokeAll(access: access, refresh: refresh, provider: provider)
        }
        return result
    }

    // MARK: Access tokens and refresh

    /// Why no access token can be given.
    public enum TokenError: Error, Equatable {
        case notConnected
        case needsReconnect
        case providerUnavailable(retryAfterSeconds: Int)
    }

    /// A fresh access token of the install's connection, refreshed first when due.
    public func accessToken(for installID: String) async throws -> AccessToken {
        let current = try await snapshot(installID)
        let now = clock.millis
        guard isDue(current.record, now: now) else { return current.token }
        // Backing off after a failed refresh: the token in hand still works.
        if let next = current.record.nextRefreshAt, next > now, !isExpired(current.record, now: now) { return current.token }
        return try await sharedRefresh(installID)
    }

    /// One background pass: refreshes every connection due; prunes old connect states.
    @discardableResult
    public func refreshDue(limit: Int = 100) async -> Int {
        let now = clock.millis
        var refreshed = 0
        do {
            let due = try await database.read { try await ConnectionStore.due(now: now, margin: margin, limit: limit, on: $0) }
            for installID in due {
                do {
                    _ = try await sharedRefresh(installID)
                    refreshed += 1
                } catch {
                    // Recorded on the connection already (needs_reconnect or a back-off).
                }
            }
            try await database.transaction { db in
                for id in try await OAuthStateStore.pruneExpired(before: now - 60 * 60 * 1000, limit: 500, on: db) {
                    try await secrets.deleteAll(owner: id, on: db)
                }
            }
        } catch {
            logger.error("oauth refresh pass failed", metadata: ["error_type": "\(type(of: error))"])
        }
        return refreshed
    }

    /// Joins the refresh of `installID` running in this process, or starts it.
    func sharedRefresh(_ installID: String) async throws -> AccessToken {
        let task = flights.withLock { running -> Task<AccessToken, any Error> in
            if let task = running[installID] { return task }
            let task = Task { [self] in
                defer { _ = flights.withLock { $0.removeValue(forKey: installID) } }
                return try await refreshUnderLease(installID)
            }
            running[installID] = task
            return task
        }
        return try await task.value
    }

    /// Takes the connection's lease in the database (or waits for the node holding it), reads
    /// the connection again under it, and refreshes only if it is still due.
    private func refreshUnderLease(_ installID: String) async throws -> AccessToken {
        let started = clock.millis
        var waitedOn: Int?
        while true {
            let current = try await snapshot(installID)
            let now = clock.millis
            if let version = waitedOn, current.record.tokenVersion != version { return current.token }
            if !isDue(current.record, now: now) { return current.token }
            let owner = node + "." + Self.randomText().prefix(8)
            let leased = try await database.transaction { db in
                try await ConnectionStore.takeLease(install: installID, owner: owner, until: now + leaseMillis, now: now, on: db)
            }
            if leased {
                let fresh = try await snapshot(installID)
                if fresh.record.tokenVersion != current.record.tokenVersion || !isDue(fresh.record, now: clock.millis) {
                    try await database.transaction { try await ConnectionStore.releaseLease(install: installID, owner: owner, on: $0) }
                    return fresh.token
                }
                return try await refreshHoldingLease(fresh, owner: owner, leasedAt: .now)
            }
            waitedOn = waitedOn ?? current.record.tokenVersion
            if clock.millis - started > waitMillis {
                if !isExpired(current.record, now: clock.millis) { return current.token }
                throw TokenError.providerUnavailable(retryAfterSeconds: 5)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func refreshHoldingLease(_ current: Snapshot, owner: String, leasedAt: ContinuousClock.Instant) async throws -> AccessToken {
        let record = current.record
        let install = record.installId
        func backOff(_ reason: String) async throws -> AccessToken {
            let now = clock.millis
            let wait = Self.backoff[min(record.refreshFailures, Self.backoff.count - 1)]
            try await database.transaction { db in
                try await ConnectionStore.recordFailure(install: install, owner: owner, error: reason, nextAt: now + wait, at: now, on: db)
            }
            Counter(label: "mercato_oauth_refresh_total", dimensions: [("provider", record.providerKey), ("outcome", "retry_later")]).increment()
            logger.warning("oauth refresh failed; backing off", metadata: ["install_id": "\(install)", "provider": "\(record.providerKey)",
                                                                           "reason": "\(reason)", "retry_in_s": "\(wait / 1000)"])
            if !isExpired(record, now: now) { return current.token }
            throw TokenError.providerUnavailable(retryAfterSeconds: Int(wait / 1000))
        }
        let provider: ResolvedProvider
        do { provider = try await providers.resolve(record.providerKey) } catch { return try await backOff("provider_not_configured") }
        let carried = unsaved.withLock { kept -> String? in
            guard let entry = kept[install] else { return nil }
            if entry.version == record.tokenVersion { return entry.refreshToken }
            kept[install] = nil  // stored since, or reconnected: stale
            return nil
        }
        guard let refreshToken = carried ?? current.refreshToken else {
            if isExpired(record, now: clock.millis) {
                try await invalidate(record, owner: owner, reason: "no_refresh_token")
                throw TokenError.needsReconnect
            }
            return try await backOff("no_refresh_token")
        }
        let tokens: TokenSet
        do {
            tokens = try await client.refresh(refreshToken, provider: provider)
        } catch where error.isInvalidGrant {
            _ = unsaved.withLock { $0.removeValue(forKey: install) }
            try await invalidate(record, owner: owner, reason: "invalid_grant")
            throw TokenError.needsReconnect
        } catch {
            return try await backOff(error.code)
        }
        let now = clock.millis
        let scopes = tokens.scopes ?? current.token.scopes
        let expiresAt = tokens.expiresIn.map { now + Int64($0) * 1000 }
        let context = (access: SealContext(org: record.orgId, owner: install, purpose: "oauth.access_token"),
                       refresh: SealContext(org: record.orgId, owner: install, purpose: "oauth.refresh_token"))
        // The provider may have spent the old refresh token: these tokens can be the only ones
        // left, so storing them is retried while the lease is ours, and a rotated refresh token
        // that still could not be stored is kept here for the next refresh.
        let budget = Duration.milliseconds(leaseMillis - 2000)
        var pause = Duration.milliseconds(50)
        let stored: Bool
        while true {
            do {
                stored = try await database.transaction { db -> Bool in
                    guard try await ConnectionStore.storeRefreshed(install: install, owner: owner, expiresAt: expiresAt, scopes: try InstallService.json(scopes),
                                                                   at: now, on: db) else { return false }
                    try await secrets.put(tokens.accessToken, for: context.access, on: db)
                    if let rotated = tokens.refreshToken { try await secrets.put(rotated, for: context.refresh, on: db) }
                    return true
                }
                break
            } catch {
                guard ContinuousClock.now - leasedAt + pause < budget else {
                    if let rotated = tokens.refreshToken { unsaved.withLock { $0[install] = (record.tokenVersion, rotated) } }
                    logger.error("refreshed oauth tokens could not be stored; the rotated refresh token is kept in memory for the next refresh",
                                 metadata: ["install_id": "\(install)", "error_type": "\(type(of: error))"])
                    throw error
                }
                logger.warning("storing refreshed oauth tokens failed; retrying", metadata: [
                    "install_id": "\(install)", "error_type": "\(type(of: error))", "retry_in_ms": "\(pause.millis)",
                ])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(1))
            }
        }
        _ = unsaved.withLock { $0.removeValue(forKey: install) }
        guard stored else {
            // Disconnected or reconnected meanwhile: these tokens belong to nobody.
            await revokeAll(access: tokens.accessToken, refresh: tokens.refreshToken, provider: provider)
            throw TokenError.notConnected
        }
        Counter(label: "mercato_oauth_refresh_total", dimensions: [("provider", record.providerKey), ("outcome", "refreshed")]).increment()
        logger.info("oauth token refreshed", metadata: ["install_id": "\(install)", "provider": "\(record.providerKey)"])
        return AccessToken(token: tokens.accessToken, expiresAt: expiresAt.map { Timestamp.date(millis: $0) }, scopes: scopes)
    }

    /// The grant is gone: `needs_reconnect`, tokens destroyed, `connection.refresh_failed`.
    private func invalidate(_ record: ConnectionRecord, owner: String, reason: String) async throws {
        let now = clock.millis
        try await database.transaction { db in
            guard try await ConnectionStore.markNeedsReconnect(install: record.installId, owner: owner, error: reason, at: now, on: db),
                  var install = try await InstallStore.live(id: record.installId, on: db, forUpdate: true) else { return }
            try await Self.connectionLost("connection.refresh_failed", &install, record, reason: reason, actorID: "system", requestID: nil, at: now, on: db)
        }
        Counter(label: "mercato_oauth_refresh_total", dimensions: [("provider", record.providerKey), ("outcome", "needs_reconnect")]).increment()
        logger.warning("oauth grant refused; the connection needs a reconnect", metadata: ["install_id": "\(record.installId)", "provider": "\(record.providerKey)",
                                                                                           "reason": "\(reason)"])
    }

    // MARK: Internals

    struct Snapshot {
        var record: ConnectionRecord
        var token: AccessToken
        var refreshToken: String?
    }

    private func snapshot(_ installID: String) async throws -> Snapshot {
        try await database.read { db in
            guard let record = try await ConnectionStore.find(install: installID, on: db) else { throw TokenError.notConnected }
            guard record.status == "connected" else { throw TokenError.needsReconnect }
            let access = SealContext(org: record.orgId, owner: installID, purpose: "oauth.access_token")
            guard let token = try await secrets.get(access, on: db) else { throw TokenError.notConnected }
            let refresh = try await secrets.get(SealContext(org: record.orgId, owner: installID, purpose: "oauth.refresh_token"), on: db)
            return Snapshot(record: record,
                            token: AccessToken(token: token, expiresAt: record.expiresAt.map { Timestamp.date(millis: $0) },
                                               scopes: try InstallService.strings(record.scopes)),
                            refreshToken: refresh)
        }
    }

    /// Due when within the margin of expiry and past half the token's lifetime.
    func isDue(_ record: ConnectionRecord, now: Int64) -> Bool {
        guard let expires = record.expiresAt else { return false }
        let remaining = expires - now
        return remaining <= margin && remaining * 2 <= expires - record.obtainedAt
    }

    func isExpired(_ record: ConnectionRecord, now: Int64) -> Bool {
        record.expiresAt.map { $0 <= now } ?? false
    }

    /// Revokes what is given (refresh token first: that ends the grant); `true` when the
    /// provider confirmed every revocation.
    @discardableResult
    private func revokeAll(access: String?, refresh: String?, provider: ResolvedProvider) async -> Bool {
        guard provider.definition.revokeURL != nil else { return false }
        var confirmed = true
        if let refresh { confirmed = await client.revoke(refresh, hint: "refresh_token", provider: provider) && confirmed }
        if let access { confirmed = await client.revoke(access, hint: "access_token", provider: provider) && confirmed }
        if !confirmed { logger.warning("oauth revocation not confirmed by the provider", metadata: ["provider": "\(provider.definition.key)"]) }
        return confirmed
    }

    /// The install and its version's OAuth requirement; 409 `oauth_not_used` when it has none.
    private func oauthInstall(_ installID: String, org: String) async throws -> (InstallRecord, AppManifest.OAuthRequirement) {
        let (install, manifest) = try await installAndManifest(installID, org: org)
        guard let oauth = manifest.oauth else {
            throw APIError(status: 409, code: "oauth_not_used", title: "No OAuth connection",
                           detail: "`\(install.appKey)` \(install.version) does not connect to an outside account.")
        }
        return (install, oauth)
    }

    private func installAndManifest(_ installID: String, org: String) async throws -> (InstallRecord, AppManifest) {
        try await database.read { db in
            guard let install = try await InstallStore.live(id: installID, on: db), install.orgId == org else { throw APIError.notFound("Install \(installID)") }
            guard let json = try await AppStore.manifest(appID: install.appId, version: install.version, on: db) else {
                throw APIError.notFound("App version \(install.version)")
            }
            return (install, try RegistryService.decode(json))
        }
    }

    private func landing(_ params: [String: String]) -> String {
        let query = params.sorted { $0.key < $1.key }.map { OAuthClient.queryEncode($0.key) + "=" + OAuthClient.queryEncode($0.value) }.joined(separator: "&")
        return returnURL + (returnURL.contains("?") ? "&" : "?") + query
    }

    private func clearCookie(_ installID: String) -> String {
        "\(Self.cookieName(installID))=; Path=\(cookiePath); Max-Age=0; HttpOnly; SameSite=Lax" + (secureCookie ? "; Secure" : "")
    }

    static func cookieName(_ installID: String) -> String { "mercato_oauth_\(installID)" }

    static func accessContext(_ install: InstallRecord) -> SealContext {
        SealContext(org: install.orgId, owner: install.id, purpose: "oauth.access_token")
    }

    static func refreshContext(_ install: InstallRecord) -> SealContext {
        SealContext(org: install.orgId, owner: install.id, purpose: "oauth.refresh_token")
    }

    static func verifierContext(_ state: OAuthStateRecord) -> SealContext {
        SealContext(org: state.orgId, owner: state.id, purpose: "oauth.pkce_verifier")
    }

    /// The install no longer has a working connection: tokens destroyed, `active` back to
    /// `pending_oauth`, the event (`type`) and its audit row written.
    static func connectionLost(_ type: String, _ install: inout InstallRecord, _ record: ConnectionRecord, reason: String?, actorID: String,
                               requestID: String?, at now: Int64, on db: any SQLDatabase) async throws {
        try await deleteTokens(install, on: db)
        if install.status == "active" {
            install.status = "pending_oauth"
            install.updatedAt = now
            try await InstallStore.update(install, on: db)
        }
        var details: [String: JSONValue] = ["provider": .string(record.providerKey)]
        if let reason { details["reason"] = .string(reason) }
        try await InstallService.writeChange(type, install, extra: details.merging(["connection_id": .string(record.id)]) { a, _ in a },
                                             actorID: actorID, requestID: requestID, details: details, at: now, on: db)
    }

    static func deleteTokens(_ install: InstallRecord, on db: any SQLDatabase) async throws {
        try await SealedValueStore.delete(owner: install.id, purpose: accessContext(install).purpose, on: db)
        try await SealedValueStore.delete(owner: install.id, purpose: refreshContext(install).purpose, on: db)
    }

    /// 256 random bits as URL-safe base64 (43 characters: also a valid PKCE verifier).
    static func randomText() -> String { Data(SecureRandom.bytes(32)).base64URLEncodedString() }

    /// What is stored of a state or browser value: a domain-separated BLAKE2b digest.
    static func digest(_ text: String, _ kind: String) -> String {
        Digest.hex(Digest.blake2b(Array("mercato.oauth-\(kind).v1:\(text)".utf8)))
    }
}
