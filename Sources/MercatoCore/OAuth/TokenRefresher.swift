import Foundation
import Logging
import MercatoCrypto
public import MercatoHooks
import MercatoStorage
import Metrics
import SQLKit
import Synchronization

/// Access tokens for apps (`connections.token`), refreshed ahead of expiry with one refresh
/// per connection at a time: callers in this process share one flight, and a lease row in the
/// database keeps several nodes to one provider call. A rotated refresh token is stored in the
/// same transaction as its access token; a refused grant (`invalid_grant`) marks the
/// connection `needs_reconnect` through ``InstallService``.
public final class TokenRefresher: Sendable {
    let oauth: OAuthDependencies
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

    static let backoff: [Int64] = [30, 60, 120, 300, 600, 900].map { $0 * 1000 }

    public init(_ oauth: OAuthDependencies) {
        self.oauth = oauth
        let settings = oauth.settings
        self.margin = Int64(settings.oauthRefreshMarginSeconds) * 1000
        self.leaseMillis = Int64(settings.oauthTimeoutSeconds * 2 + 5) * 1000
        self.waitMillis = Int64(settings.oauthTimeoutSeconds + 5) * 1000
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
        let now = oauth.clock.millis
        guard isDue(current.record, now: now) else { return current.token }
        // Backing off after a failed refresh: the token in hand still works.
        if let next = current.record.nextRefreshAt, next > now, !isExpired(current.record, now: now) { return current.token }
        return try await sharedRefresh(installID)
    }

    /// One background pass: refreshes every connection due; prunes old connect states.
    @discardableResult
    public func refreshDue(limit: Int = 100) async -> Int {
        let now = oauth.clock.millis
        var refreshed = 0
        do {
            let due = try await oauth.database.read { try await ConnectionStore.due(now: now, margin: self.margin, limit: limit, on: $0) }
            for installID in due {
                do {
                    _ = try await sharedRefresh(installID)
                    refreshed += 1
                } catch {
                    // Recorded on the connection already (needs_reconnect or a back-off).
                }
            }
            try await oauth.database.transaction { db in
                for id in try await OAuthStateStore.pruneExpired(before: now - 60 * 60 * 1000, limit: 500, on: db) {
                    try await self.oauth.secrets.deleteAll(owner: id, on: db)
                }
            }
        } catch {
            oauth.logger.error("oauth refresh pass failed", metadata: ["error_type": "\(type(of: error))"])
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
        let started = oauth.clock.millis
        var waitedOn: Int?
        while true {
            let current = try await snapshot(installID)
            let now = oauth.clock.millis
            if let version = waitedOn, current.record.tokenVersion != version { return current.token }
            if !isDue(current.record, now: now) { return current.token }
            let owner = node + "." + ConnectFlow.randomText().prefix(8)
            let leased = try await oauth.database.transaction { db in
                try await ConnectionStore.takeLease(install: installID, owner: owner, until: now + self.leaseMillis, now: now, on: db)
            }
            if leased {
                let fresh = try await snapshot(installID)
                if fresh.record.tokenVersion != current.record.tokenVersion || !isDue(fresh.record, now: oauth.clock.millis) {
                    try await oauth.database.transaction { try await ConnectionStore.releaseLease(install: installID, owner: owner, on: $0) }
                    return fresh.token
                }
                return try await refreshHoldingLease(fresh, owner: owner, leasedAt: .now)
            }
            waitedOn = waitedOn ?? current.record.tokenVersion
            if oauth.clock.millis - started > waitMillis {
                if !isExpired(current.record, now: oauth.clock.millis) { return current.token }
                throw TokenError.providerUnavailable(retryAfterSeconds: 5)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func refreshHoldingLease(_ current: Snapshot, owner: String, leasedAt: ContinuousClock.Instant) async throws -> AccessToken {
        let record = current.record
        let install = record.installId
        func backOff(_ reason: String) async throws -> AccessToken {
            let now = oauth.clock.millis
            let wait = Self.backoff[min(record.refreshFailures, Self.backoff.count - 1)]
            try await oauth.database.transaction { db in
                try await ConnectionStore.recordFailure(install: install, owner: owner, error: reason, nextAt: now + wait, at: now, on: db)
            }
            Counter(label: "mercato_oauth_refresh_total", dimensions: [("provider", record.providerKey), ("outcome", "retry_later")]).increment()
            oauth.logger.warning("oauth refresh failed; backing off", metadata: ["install_id": "\(install)", "provider": "\(record.providerKey)",
                                                                           "reason": "\(reason)", "retry_in_s": "\(wait / 1000)"])
            if !isExpired(record, now: now) { return current.token }
            throw TokenError.providerUnavailable(retryAfterSeconds: Int(wait / 1000))
        }
        let provider: ResolvedProvider
        do { provider = try await oauth.providers.resolve(record.providerKey) } catch { return try await backOff("provider_not_configured") }
        let carried = unsaved.withLock { kept -> String? in
            guard let entry = kept[install] else { return nil }
            if entry.version == record.tokenVersion { return entry.refreshToken }
            kept[install] = nil  // stored since, or reconnected: stale
            return nil
        }
        guard let refreshToken = carried ?? current.refreshToken else {
            if isExpired(record, now: oauth.clock.millis) {
                try await invalidate(record, owner: owner, reason: "no_refresh_token")
                throw TokenError.needsReconnect
            }
            return try await backOff("no_refresh_token")
        }
        let tokens: TokenSet
        do {
            tokens = try await oauth.client.refresh(refreshToken, provider: provider)
        } catch where error.isInvalidGrant {
            _ = unsaved.withLock { $0.removeValue(forKey: install) }
            try await invalidate(record, owner: owner, reason: "invalid_grant")
            throw TokenError.needsReconnect
        } catch {
            return try await backOff(error.code)
        }
        let now = oauth.clock.millis
        let scopes = tokens.scopes ?? current.token.scopes
        let expiresAt = tokens.expiresIn.map { now + Int64($0) * 1000 }
        let context = (access: ConnectionTokens.access(org: record.orgId, install: install), refresh: ConnectionTokens.refresh(org: record.orgId, install: install))
        // The provider may have spent the old refresh token: these tokens can be the only ones
        // left, so storing them is retried while the lease is ours, and a rotated refresh token
        // that still could not be stored is kept here for the next refresh.
        let budget = Duration.milliseconds(leaseMillis - 2000)
        var pause = Duration.milliseconds(50)
        let stored: Bool
        while true {
            do {
                stored = try await oauth.database.transaction { db -> Bool in
                    guard try await ConnectionStore.storeRefreshed(install: install, owner: owner, expiresAt: expiresAt, scopes: scopes,
                                                                   at: now, on: db) else { return false }
                    try await self.oauth.secrets.put(tokens.accessToken, for: context.access, on: db)
                    if let rotated = tokens.refreshToken { try await self.oauth.secrets.put(rotated, for: context.refresh, on: db) }
                    return true
                }
                break
            } catch {
                guard ContinuousClock.now - leasedAt + pause < budget else {
                    if let rotated = tokens.refreshToken { unsaved.withLock { $0[install] = (record.tokenVersion, rotated) } }
                    oauth.logger.error("refreshed oauth tokens could not be stored; the rotated refresh token is kept in memory for the next refresh",
                                 metadata: ["install_id": "\(install)", "error_type": "\(type(of: error))"])
                    throw error
                }
                oauth.logger.warning("storing refreshed oauth tokens failed; retrying", metadata: [
                    "install_id": "\(install)", "error_type": "\(type(of: error))", "retry_in_ms": "\(pause.millis)",
                ])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(1))
            }
        }
        _ = unsaved.withLock { $0.removeValue(forKey: install) }
        guard stored else {
            // Disconnected or reconnected meanwhile: these tokens belong to nobody.
            await oauth.revoker.revoke(access: tokens.accessToken, refresh: tokens.refreshToken, provider: provider)
            throw TokenError.notConnected
        }
        Counter(label: "mercato_oauth_refresh_total", dimensions: [("provider", record.providerKey), ("outcome", "refreshed")]).increment()
        oauth.logger.info("oauth token refreshed", metadata: ["install_id": "\(install)", "provider": "\(record.providerKey)"])
        return AccessToken(token: tokens.accessToken, expiresAt: expiresAt.map { Timestamp.date(millis: $0) }, scopes: scopes)
    }

    /// The grant is gone: `needs_reconnect`, tokens destroyed, `connection.refresh_failed`.
    private func invalidate(_ record: ConnectionRecord, owner: String, reason: String) async throws {
        let now = oauth.clock.millis
        try await oauth.database.transaction { db in
            guard try await ConnectionStore.markNeedsReconnect(install: record.installId, owner: owner, error: reason, at: now, on: db),
                  var install = try await InstallStore.live(id: record.installId, on: db, forUpdate: true) else { return }
            _ = try await self.oauth.installs.connectionLost("connection.refresh_failed", &install, record, reason: reason, actorID: "system", requestID: nil, on: db)
        }
        Counter(label: "mercato_oauth_refresh_total", dimensions: [("provider", record.providerKey), ("outcome", "needs_reconnect")]).increment()
        oauth.logger.warning("oauth grant refused; the connection needs a reconnect", metadata: ["install_id": "\(record.installId)", "provider": "\(record.providerKey)",
                                                                                           "reason": "\(reason)"])
    }

    // MARK: Internals

    struct Snapshot {
        var record: ConnectionRecord
        var token: AccessToken
        var refreshToken: String?
    }

    private func snapshot(_ installID: String) async throws -> Snapshot {
        try await oauth.database.read { db in
            guard let record = try await ConnectionStore.find(install: installID, on: db) else { throw TokenError.notConnected }
            guard record.status == .connected else { throw TokenError.needsReconnect }
            let access = ConnectionTokens.access(org: record.orgId, install: installID)
            guard let token = try await self.oauth.secrets.get(access, on: db) else { throw TokenError.notConnected }
            let refresh = try await self.oauth.secrets.get(ConnectionTokens.refresh(org: record.orgId, install: installID), on: db)
            return Snapshot(record: record,
                            token: AccessToken(token: token, expiresAt: record.expiresAt.map { Timestamp.date(millis: $0) },
                                               scopes: record.scopes),
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

}
