import Foundation
import MercatoCrypto
public import MercatoHooks
public import MercatoStorage
import SQLKit

/// Installs of apps in orgs, and the one owner of every move of an install between states.
///
/// Every transition is a method of this file; each runs in one transaction with its outbox
/// event and audit row (so no change exists without its event), and nothing else writes
/// `installs.status`:
///
/// | transition | from → to | event | who may call |
/// |---|---|---|---|
/// | ``install(appKey:version:config:by:)`` | → `active`, or `pending_oauth` when the app connects an account | `app.installed` | admin+ of the org |
/// | ``patchConfig(_:patch:by:)`` | unchanged | `install.config_updated` | admin+ |
/// | ``setEnabled(_:_:by:)`` | `disabled` ↔ `active` / `pending_oauth` | `app.enabled`, `app.disabled` | admin+ |
/// | ``upgrade(_:to:acceptScopes:config:by:)`` | may go to `pending_oauth` (new provider or scopes) | `install.upgraded` (+ `connection.disconnected`) | admin+ |
/// | ``uninstall(_:by:)`` | → `uninstalled` (config and tokens destroyed) | `app.uninstalled` | admin+ |
/// | ``connected(_:connection:account:scopes:by:requestID:on:)`` | `pending_oauth` → `active` | `connection.connected` | ``ConnectFlow`` after a provider's callback |
/// | ``connectionLost(_:_:_:reason:actorID:requestID:on:)`` | `active` → `pending_oauth` | `connection.disconnected`, `connection.refresh_failed` | ``ConnectFlow`` (disconnect), ``TokenRefresher`` (grant refused), ``upgrade(_:to:acceptScopes:config:by:)`` |
///
/// A grant left behind by a change (uninstall, an upgrade that drops the provider, a
/// disconnect) is given back to the provider by the ``ConnectionRevoker`` after the commit.
public struct InstallService: Sendable {
    public let database: Database
    public let secrets: SecretStore
    public let clock: WallClock
    let manifests: Manifests
    let revoker: ConnectionRevoker
    public var limits = PlanLimits()
    /// The inbound routes' installs, org names and opened secrets (``InboundTargets``).
    let inboundTargets = InboundTargets()
    /// Test seam: called inside the transaction after every write of a change, with the action
    /// name; throwing rolls the whole change back.
    public var faultInjection: (@Sendable (String) throws -> Void)?

    public init(database: Database, secrets: SecretStore, manifests: Manifests, revoker: ConnectionRevoker, clock: WallClock) {
        self.database = database
        self.secrets = secrets
        self.manifests = manifests
        self.revoker = revoker
        self.clock = clock
    }

    /// An install as the API shows it.
    public struct View: Sendable {
        public var install: InstallRecord
        public var scopes: [String] { install.scopes }
        /// Secret fields masked.
        public var config: [String: JSONValue]
        public var manifest: AppManifest
    }

    /// Who acted and under which request, for audit rows.
    public struct Actor: Sendable {
        public var principal: Principal
        public var requestID: String?
        public init(_ principal: Principal, requestID: String?) {
            self.principal = principal
            self.requestID = requestID
        }
        var id: String { principal.actorID }
    }

    // MARK: Transitions an admin asks for

    /// Installs `appKey` (its latest version unless `version` is given) in the caller's org.
    public func install(appKey: String, version: String?, config: [String: JSONValue], by actor: Actor) async throws -> View {
        let org = try adminOrg(of: actor.principal)
        let now = clock.millis
        return try await database.transaction { db in
            guard let orgRecord = try await OrgStore.find(id: org, on: db), let orgPlan = Plan(rawValue: orgRecord.plan) else {
                throw APIError.notFound("Org \(org)")
            }
            guard let app = try await AppStore.find(key: appKey, on: db), app.status != "draft" || app.developerOrgId == org else {
                throw APIError.notFound("App \(appKey)")
            }
            if app.status == "unlisted" && app.developerOrgId != org {
                throw APIError(status: 409, code: "app_unlisted", title: "App unlisted", detail: "The developer has unlisted `\(appKey)`; it takes no new installs.")
            }
            let chosen = version ?? app.latestVersion
            guard let manifest = try await manifests.manifest(appID: app.id, version: chosen, on: db) else {
                throw APIError.invalidRequest("`\(appKey)` has no version \(chosen).", errors: [.init(field: "version", message: "is not a version of this app")])
            }
            if manifest.plan > orgPlan {
                throw APIError(status: 403, code: "plan_required", title: "Plan required",
                               detail: "`\(appKey)` needs the \(manifest.plan.rawValue) plan; this org is on \(orgPlan.rawValue).")
            }
            if try await InstallStore.liveInstall(org: org, appID: app.id, on: db) != nil {
                throw APIError(status: 409, code: "already_installed", title: "Already installed", detail: "`\(appKey)` is already installed in this org.")
            }
            if let max = limits.maxInstalls[orgPlan], try await InstallStore.countLive(org: org, on: db) >= max {
                throw APIError(status: 403, code: "quota_exceeded", title: "Install quota reached",
                               detail: "The \(orgPlan.rawValue) plan allows \(max) installs; uninstall one or upgrade the plan.")
            }
            let resolution = try ConfigResolver.resolve(fields: manifest.config, current: [:], patch: config)
            var install = InstallRecord(
                id: RecordID.make("ins", millis: now), orgId: org, appId: app.id, appKey: app.key, version: manifest.version,
                status: manifest.oauth == nil ? .active : .pendingOAuth, scopes: manifest.scopes,
                configKeys: [], createdBy: actor.id, createdAt: now, updatedAt: now
            )
            install.configKeys = try await writeConfig(install, values: resolution.values, previous: [:], on: db)
            try await InstallStore.insert(install, on: db)
            try await record("app.installed", install, actor: actor, details: ["version": .string(install.version)], on: db)
            return View(install: install, config: ConfigResolver.masked(resolution.values, fields: manifest.config), manifest: manifest)
        }
    }

    /// Sets the keys in `patch` (`null` clears); omitted keys, and secret fields sent as the
    /// mask, keep their value.
    public func patchConfig(_ id: String, patch: [String: JSONValue], by actor: Actor) async throws -> View {
        try await change(id, by: actor) { db, install, manifest in
            let current = try await readConfig(install, on: db)
            let resolution = try ConfigResolver.resolve(fields: manifest.config, current: current, patch: patch)
            if !resolution.changed.isEmpty {
                install.configKeys = try await writeConfig(install, values: resolution.values, previous: current, on: db)
                // A new value under the same keys moves the row too: whoever keeps what the row
                // stood for (the inbound routes' opened secrets) sees the change at its next read.
                install.updatedAt = max(clock.millis, install.updatedAt + 1)
                let changed: JSONValue = .array(resolution.changed.map(JSONValue.string))
                try await record("install.config_updated", install, extra: ["changed_fields": changed], actor: actor,
                                 details: ["changed_fields": changed], on: db)
            }
            return Changed(config: resolution.values)
        }.view
    }

    /// Disables (commands refused, config kept) or enables again: back to `active`, or to
    /// `pending_oauth` when the app needs an account that is not connected.
    public func setEnabled(_ id: String, _ enabled: Bool, by actor: Actor) async throws -> View {
        try await change(id, by: actor) { db, install, manifest in
            let connected = try await ConnectionStore.find(install: install.id, on: db)?.status == .connected
            if enabled ? install.status == .disabled : install.status != .disabled {
                install.status = enabled ? (manifest.oauth == nil || connected ? .active : .pendingOAuth) : .disabled
                try await record(enabled ? "app.enabled" : "app.disabled", install, actor: actor, details: [:], on: db)
            }
            return Changed(config: try await readConfig(install, on: db))
        }.view
    }

    /// Moves to a newer version; scopes the new version adds must be listed in `acceptScopes`.
    ///
    /// The account connected for the old version: another provider (or none) leaves it behind
    /// (connection and tokens destroyed here, `connection.disconnected` with reason
    /// `app_upgraded`, the grant revoked after the commit); more provider scopes than the old
    /// version asked for need a reconnect (the install waits in `pending_oauth`, the old
    /// connection serves until then).
    public func upgrade(_ id: String, to version: String, acceptScopes: [String], config patch: [String: JSONValue], by actor: Actor) async throws -> View {
        let (view, leftBehind) = try await change(id, by: actor) { db, install, manifest in
            guard let target = Semver(version) else {
                throw APIError.invalidRequest("`version` must be a semantic version.", errors: [.init(field: "version", message: "is not semver")])
            }
            guard let current = Semver(install.version), target > current else {
                throw APIError(status: 409, code: "version_not_newer", title: "Not an upgrade", detail: "The install is on \(install.version); \(version) is not newer.")
            }
            guard let next = try await manifests.manifest(appID: install.appId, version: version, on: db) else {
                throw APIError.invalidRequest("`\(install.appKey)` has no version \(version).", errors: [.init(field: "version", message: "is not a version of this app")])
            }
            let granted = Set(install.scopes)
            let added = next.scopes.filter { !granted.contains($0) }
            let missing = added.filter { !acceptScopes.contains($0) }
            if !missing.isEmpty {
                throw APIError(status: 409, code: "scopes_not_accepted", title: "New scopes need consent",
                               detail: "Version \(version) asks for more scopes: \(missing.joined(separator: ", ")). Repeat with `accept_scopes` listing them.",
                               errors: missing.map { .init(field: "accept_scopes", message: "must include \($0)") })
            }
            let values = try await readConfig(install, on: db)
            let resolution = try ConfigResolver.resolve(fields: next.config, current: values, patch: patch)
            let from = install.version
            install.version = next.version
            install.scopes = next.scopes
            if install.status != .disabled, next.oauth != nil, manifest.oauth == nil { install.status = .pendingOAuth }
            var reconnect = false
            var leftBehind: ConnectionRevoker.Grant?
            if let connection = try await ConnectionStore.find(install: install.id, on: db) {
                if next.oauth?.provider != connection.providerKey {
                    let status = install.status
                    try await ConnectionStore.delete(install: install.id, on: db)
                    leftBehind = try await connectionLost("connection.disconnected", &install, connection, reason: "app_upgraded",
                                                          actorID: actor.id, requestID: actor.requestID, on: db)
                    if next.oauth == nil { install.status = status }
                } else if let wanted = next.oauth?.scopes, !Set(wanted).isSubset(of: Set(manifest.oauth?.scopes ?? [])) {
                    if install.status == .active { install.status = .pendingOAuth }
                    reconnect = true
                }
            }
            install.configKeys = try await writeConfig(install, values: resolution.values, previous: values, on: db)
            try await record("install.upgraded", install, extra: ["from_version": .string(from), "added_scopes": .array(added.map(JSONValue.string)),
                                                                  "reconnect_required": .bool(reconnect)],
                             actor: actor, details: ["from_version": .string(from), "to_version": .string(next.version)], on: db)
            manifest = next
            return Changed(config: resolution.values, leftBehind: leftBehind)
        }
        await revoker.revoke(leftBehind)
        return view
    }

    /// Uninstalls: config and secrets destroyed, the row kept (as `uninstalled`) for the audit
    /// trail and command logs; plugins drop their data through the `installRemoved` hook; the
    /// connected account's grant is given back to the provider after the commit.
    public func uninstall(_ id: String, by actor: Actor) async throws {
        let (_, leftBehind) = try await change(id, by: actor) { db, install, _ in
            let connection = try await ConnectionStore.find(install: install.id, on: db)
            let grant = try await connection.asyncMap { try await ConnectionTokens.take(install, provider: $0.providerKey, secrets: secrets, on: db) }
            try await secrets.deleteAll(owner: install.id, on: db)
            try await ConnectionStore.delete(install: install.id, on: db)
            install.status = .uninstalled
            install.configKeys = []
            install.removedAt = clock.millis
            try await record("app.uninstalled", install, actor: actor, details: [:], on: db)
            return Changed(config: [:], leftBehind: grant)
        }
        await revoker.revoke(leftBehind)
    }

    // MARK: Transitions the OAuth services make, in their own transaction

    /// A connect flow stored a new connection: `pending_oauth` becomes `active`, and
    /// `connection.connected` is written.
    func connected(_ install: inout InstallRecord, connection: ConnectionRecord, account: (id: String?, name: String?), scopes: [String],
                   by actorID: String, requestID: String?, on db: any SQLDatabase) async throws {
        let now = clock.millis
        if install.status == .pendingOAuth {
            install.status = .active
            install.updatedAt = now
            try await InstallStore.update(install, on: db)
        }
        try await Self.writeChange(
            "connection.connected", install,
            extra: ["connection_id": .string(connection.id), "provider": .string(connection.providerKey),
                    "account_id": account.id.map(JSONValue.string) ?? .null, "account_name": account.name.map(JSONValue.string) ?? .null,
                    "scopes": .array(scopes.map(JSONValue.string))],
            actorID: actorID, requestID: requestID,
            details: ["provider": .string(connection.providerKey), "account_id": account.id.map(JSONValue.string) ?? .null], at: now, on: db
        )
    }

    /// The install no longer has a working connection (`type` is `connection.disconnected` or
    /// `connection.refresh_failed`; the caller deleted or marked the connection row): its
    /// tokens are taken out and destroyed, `active` goes back
    /// to `pending_oauth`, and the event and its audit row are written. Answers the grant the
    /// tokens held, for the caller to revoke once this commits (a refused grant needs none).
    @discardableResult
    func connectionLost(_ type: String, _ install: inout InstallRecord, _ connection: ConnectionRecord, reason: String?, actorID: String,
                        requestID: String?, on db: any SQLDatabase) async throws -> ConnectionRevoker.Grant {
        let now = clock.millis
        let grant = try await ConnectionTokens.take(install, provider: connection.providerKey, secrets: secrets, on: db)
        if install.status == .active {
            install.status = .pendingOAuth
            install.updatedAt = now
            try await InstallStore.update(install, on: db)
        }
        var details: [String: JSONValue] = ["provider": .string(connection.providerKey)]
        if let reason { details["reason"] = .string(reason) }
        try await Self.writeChange(type, install, extra: details.merging(["connection_id": .string(connection.id)]) { a, _ in a },
                                   actorID: actorID, requestID: requestID, details: details, at: now, on: db)
        return grant
    }

    // MARK: Internals

    /// What a change's body did: the config values to answer with (masked by ``change``), and
    /// a grant to give back once it committed.
    struct Changed: Sendable {
        var config: [String: JSONValue]
        var leftBehind: ConnectionRevoker.Grant? = nil
    }

    /// Loads a live install of the caller's org for change (admin+), runs `body`, saves, and
    /// runs the fault seam, all in one transaction.
    private func change(_ id: String, by actor: Actor,
                        _ body: @escaping @Sendable (any SQLDatabase, inout InstallRecord, inout AppManifest) async throws -> Changed) async throws
        -> (view: View, leftBehind: ConnectionRevoker.Grant?) {
        let org = try adminOrg(of: actor.principal)
        return try await database.transaction { db in
            guard var install = try await InstallStore.live(id: id, on: db, forUpdate: true), install.orgId == org else {
                throw APIError.notFound("Install \(id)")
            }
            guard var manifest = try await manifests.manifest(appID: install.appId, version: install.version, on: db) else {
                throw APIError.notFound("App version \(install.version)")
            }
            let before = install
            let changed = try await body(db, &install, &manifest)
            if install != before {
                install.updatedAt = max(clock.millis, install.updatedAt)
                try await InstallStore.update(install, on: db)
            }
            return (View(install: install, config: ConfigResolver.masked(changed.config, fields: manifest.config), manifest: manifest), changed.leftBehind)
        }
    }

    /// Writes the outbox event and the audit row of an admin's change, then runs the fault seam.
    private func record(_ type: String, _ install: InstallRecord, extra: [String: JSONValue] = [:], actor: Actor, details: [String: JSONValue],
                        on db: any SQLDatabase) async throws {
        try await Self.writeChange(type, install, extra: extra, actorID: actor.id, requestID: actor.requestID, details: details, at: clock.millis, on: db)
        try faultInjection?(type)
    }

    /// Writes the outbox event (`type`, the install's ids, app, version and status plus `extra`)
    /// and the audit row of a change to `install`, in the caller's transaction.
    private static func writeChange(_ type: String, _ install: InstallRecord, extra: [String: JSONValue], actorID: String, requestID: String?,
                                    details: [String: JSONValue], at now: Int64, on db: any SQLDatabase) async throws {
        var data: [String: JSONValue] = [
            "install_id": .string(install.id), "org_id": .string(install.orgId), "app": .string(install.appKey),
            "version": .string(install.version), "status": .string(install.status.rawValue),
        ]
        data.merge(extra) { _, new in new }
        try await Outbox.write(type, data: .object(data), org: install.orgId, install: install.id, app: install.appId, at: now, on: db)
        try await ActivityLog.record(org: install.orgId, actor: actorID, action: type, target: install.id, requestID: requestID,
                                     details: details, at: now, on: db)
    }

    func memberOrg(of caller: Principal) throws -> String {
        try caller.org(atLeast: .member, to: "Reading installs")
    }

    private func adminOrg(of caller: Principal) throws -> String {
        try caller.org(atLeast: .admin, to: "Installing and changing apps")
    }
}

extension Optional {
    /// `map` for an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
