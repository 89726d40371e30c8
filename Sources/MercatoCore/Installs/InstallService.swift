import Foundation
import MercatoCrypto
public import MercatoHooks
public import MercatoStorage
import SQLKit

/// Installs of apps in orgs: lifecycle, encrypted config, and, in the same transaction as each
/// change, its outbox event and audit row, so no change can exist without its event.
public struct InstallService: Sendable {
    public let database: Database
    public let secrets: SecretStore
    public let clock: WallClock
    public var limits = PlanLimits()
    /// Test seam: called inside the transaction after every write of a change, with the action
    /// name; throwing rolls the whole change back.
    let manifests = ManifestCache()
    public var faultInjection: (@Sendable (String) throws -> Void)?

    public init(database: Database, secrets: SecretStore, clock: WallClock) {
        self.database = database
        self.secrets = secrets
        self.clock = clock
    }

    /// An install as the API shows it.
    public struct View: Sendable {
        public var install: InstallRecord
        public var scopes: [String]
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

    // MARK: Reads

    public func list(by caller: Principal, cursor: String?, limit: Int) async throws -> (views: [View], nextCursor: String?) {
        let org = try memberOrg(of: caller)
        let after = cursor ?? ""
        if let cursor, !RecordID.isValid(cursor, prefix: "ins") {
            throw APIError.invalidRequest("`cursor` is not a cursor this list handed out.", errors: [.init(field: "cursor", message: "is not valid")])
        }
        return try await database.read { db in
            let rows = try await InstallStore.page(org: org, afterID: after, limit: limit + 1, on: db)
            var views: [View] = []
            for row in rows.prefix(limit) { views.append(try await view(row, on: db)) }
            return (views, rows.count > limit ? rows.prefix(limit).last?.id : nil)
        }
    }

    public func get(_ id: String, by caller: Principal) async throws -> View {
        let org = try memberOrg(of: caller)
        return try await database.read { db in
            guard let install = try await InstallStore.live(id: id, on: db), install.orgId == org else { throw APIError.notFound("Install \(id)") }
            return try await view(install, on: db)
        }
    }

    /// The config with secret fields in clear: only for the app itself (`install.config`).
    public func configInClear(_ installID: String) async throws -> [String: JSONValue] {
        try await database.read { db in
            guard let install = try await InstallStore.live(id: installID, on: db) else { throw APIError.notFound("Install \(installID)") }
            return try await readConfig(install, on: db)
        }
    }

    // MARK: Changes

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
            guard let json = try await AppStore.manifest(appID: app.id, version: chosen, on: db) else {
                throw APIError.invalidRequest("`\(appKey)` has no version \(chosen).", errors: [.init(field: "version", message: "is not a version of this app")])
            }
            let manifest = try RegistryService.decode(json)
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
                status: manifest.oauth == nil ? "active" : "pending_oauth", scopes: try Self.json(manifest.scopes),
                configKeys: "[]", createdBy: actor.id, createdAt: now, updatedAt: now
            )
            install.configKeys = try await writeConfig(install, values: resolution.values, previous: [:], on: db)
            try await InstallStore.insert(install, on: db)
            try await record("app.installed", install, extra: [:], actor: actor, details: ["version": .string(install.version)], on: db)
            return View(install: install, scopes: manifest.scopes, config: ConfigResolver.masked(resolution.values, fields: manifest.config), manifest: manifest)
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
                try await record("install.config_updated", install, extra: ["changed_fields": .array(resolution.changed.map(JSONValue.string))],
                                 actor: actor, details: ["changed_fields": .array(resolution.changed.map(JSONValue.string))], on: db)
            }
            return resolution.values
        }
    }

    public func setEnabled(_ id: String, _ enabled: Bool, by actor: Actor) async throws -> View {
        try await change(id, by: actor) { db, install, manifest in
            let connected = try await ConnectionStore.find(install: install.id, on: db)?.status == "connected"
            let target = enabled ? (manifest.oauth == nil || connected ? "active" : "pending_oauth") : "disabled"
            if enabled ? install.status == "disabled" : install.status != "disabled" {
                install.status = target
                try await record(enabled ? "app.enabled" : "app.disabled", install, extra: [:], actor: actor, details: [:], on: db)
            }
            return try await readConfig(install, on: db)
        }
    }

    /// Moves to a newer version; scopes the new version adds must be listed in `acceptScopes`.
    public func upgrade(_ id: String, to version: String, acceptScopes: [String], config patch: [String: JSONValue], by actor: Actor) async throws -> View {
        try await change(id, by: actor) { db, install, manifest in
            guard let target = Semver(version) else {
                throw APIError.invalidRequest("`version` must be a semantic version.", errors: [.init(field: "version", message: "is not semver")])
            }
            guard let current = Semver(install.version), target > current else {
                throw APIError(status: 409, code: "version_not_newer", title: "Not an upgrade", detail: "The install is on \(install.version); \(version) is not newer.")
            }
            guard let json = try await AppStore.manifest(appID: install.appId, version: version, on: db) else {
                throw APIError.invalidRequest("`\(install.appKey)` has no version \(version).", errors: [.init(field: "version", message: "is not a version of this app")])
            }
            let next = try RegistryService.decode(json)
            let granted = Set(try Self.strings(install.scopes))
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
            install.scopes = try Self.json(next.scopes)
            if install.status != "disabled", next.oauth != nil, manifest.oauth == nil { install.status = "pending_oauth" }
            // The account connected for the old version. Another provider (or none) leaves it
            // behind: connection and tokens destroyed here, `connection.disconnected` with reason
            // `app_upgraded`, the grant revoked after the commit (ConnectionService.upgrade).
            // More provider scopes than the old version asked for need a reconnect: the install
            // waits in `pending_oauth`, the old connection serves until then.
            var reconnect = false
            if let record = try await ConnectionStore.find(install: install.id, on: db) {
                if next.oauth?.provider != record.providerKey {
                    let status = install.status
                    try await ConnectionStore.delete(install: install.id, on: db)
                    try await ConnectionService.connectionLost("connection.disconnected", &install, record, reason: "app_upgraded",
                                                               actorID: actor.principal.actorID, requestID: actor.requestID, at: clock.millis, on: db)
                    if next.oauth == nil { install.status = status }
                } else if let wanted = next.oauth?.scopes, !Set(wanted).isSubset(of: Set(manifest.oauth?.scopes ?? [])) {
                    if install.status == "active" { install.status = "pending_oauth" }
                    reconnect = true
                }
            }
            install.configKeys = try await writeConfig(install, values: resolution.values, previous: values, on: db)
            try await record("install.upgraded", install, extra: ["from_version": .string(from), "added_scopes": .array(added.map(JSONValue.string)),
                                                                  "reconnect_required": .bool(reconnect)],
                             actor: actor, details: ["from_version": .string(from), "to_version": .string(next.version)], on: db)
            manifest = next
            return resolution.values
        }
    }

    /// Uninstalls: config and secrets destroyed, the row kept (as `uninstalled`) for the audit
    /// trail and command logs; plugins drop their data through the `installRemoved` hook.
    public func uninstall(_ id: String, by actor: Actor) async throws {
        _ = try await change(id, by: actor) { db, install, _ in
            try await secrets.deleteAll(owner: install.id, on: db)
            try await ConnectionStore.delete(install: install.id, on: db)
            install.status = "uninstalled"
            install.configKeys = "[]"
            install.removedAt = clock.millis
            try await record("app.uninstalled", install, extra: [:], actor: actor, details: [:], on: db)
            return [:]
        }
    }

    // MARK: Internals

    /// Loads a live install of the caller's org for change (admin+), runs `body`, saves, and
    /// runs the fault seam, all in one transaction.
    private func change(_ id: String, by actor: Actor,
                        _ body: @Sendable (any SQLDatabase, inout InstallRecord, inout AppManifest) async throws -> [String: JSONValue]) async throws -> View {
        let org = try adminOrg(of: actor.principal)
        return try await database.transaction { db in
            guard var install = try await InstallStore.live(id: id, on: db, forUpdate: true), install.orgId == org else {
                throw APIError.notFound("Install \(id)")
            }
            guard let json = try await AppStore.manifest(appID: install.appId, version: install.version, on: db) else {
                throw APIError.notFound("App version \(install.version)")
            }
            var manifest = try RegistryService.decode(json)
            let before = install
            let values = try await body(db, &install, &manifest)
            if install != before {
                install.updatedAt = clock.millis
                try await InstallStore.update(install, on: db)
            }
            return View(install: install, scopes: try Self.strings(install.scopes), config: ConfigResolver.masked(values, fields: manifest.config), manifest: manifest)
        }
    }

    /// Writes the outbox event and the audit row of a change, then runs the fault seam.
    private func record(_ type: String, _ install: InstallRecord, extra: [String: JSONValue], actor: Actor, details: [String: JSONValue], on db: any SQLDatabase) async throws {
        try await Self.writeChange(type, install, extra: extra, actorID: actor.id, requestID: actor.requestID, details: details, at: clock.millis, on: db)
        try faultInjection?(type)
    }

    /// Writes the outbox event (`type`, the install's ids, app, version and status plus `extra`)
    /// and the audit row of a change to `install`, in the caller's transaction.
    static func writeChange(_ type: String, _ install: InstallRecord, extra: [String: JSONValue], actorID: String, requestID: String?,
                            details: [String: JSONValue], at now: Int64, on db: any SQLDatabase) async throws {
        var data: [String: JSONValue] = [
            "install_id": .string(install.id), "org_id": .string(install.orgId), "app": .string(install.appKey),
            "version": .string(install.version), "status": .string(install.status),
        ]
        data.merge(extra) { _, new in new }
        let payload: JSONValue = .object(["type": .string(type), "timestamp": .string(Timestamp.rfc3339(Timestamp.date(millis: now))), "data": .object(data)])
        try await OutboxStore.insert(
            OutboxEventRecord(id: RecordID.make("msg", millis: now), orgId: install.orgId, installId: install.id, appId: install.appId,
                              type: type, payload: try Self.json(payload), createdAt: now),
            on: db
        )
        try await ActivityLog.record(org: install.orgId, actor: actorID, action: type, target: install.id, requestID: requestID,
                                     details: details, at: now, on: db)
    }

    private func view(_ install: InstallRecord, on db: any SQLDatabase) async throws -> View {
        guard let manifest = try await manifests.manifest(appID: install.appId, version: install.version, on: db) else {
            throw APIError.notFound("App version \(install.version)")
        }
        let values = try await readConfig(install, on: db)
        return View(install: install, scopes: try Self.strings(install.scopes), config: ConfigResolver.masked(values, fields: manifest.config), manifest: manifest)
    }

    private func readConfig(_ install: InstallRecord, on db: any SQLDatabase) async throws -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        let keys = try Self.strings(install.configKeys)
        guard !keys.isEmpty else { return values }
        // One statement for all of the install's sealed values, each opened with the context
        // of the field it is read for (a value copied into another row or field fails).
        var sealed: [String: SealedValueRecord] = [:]
        for record in try await SealedValueStore.all(owner: install.id, on: db) { sealed[record.purpose] = record }
        for key in keys {
            let context = SealContext(org: install.orgId, owner: install.id, purpose: "config.\(key)")
            guard let record = sealed[context.purpose] else { continue }
            let text = try secrets.open(record, expecting: context)
            values[key] = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        }
        return values
    }

    /// Seals every changed value, deletes cleared ones; answers the new key list (JSON).
    private func writeConfig(_ install: InstallRecord, values: [String: JSONValue], previous: [String: JSONValue], on db: any SQLDatabase) async throws -> String {
        for (key, value) in values where previous[key] != value {
            try await secrets.put(try Self.json(value), for: SealContext(org: install.orgId, owner: install.id, purpose: "config.\(key)"), on: db)
        }
        for key in previous.keys where values[key] == nil {
            try await SealedValueStore.delete(owner: install.id, purpose: "config.\(key)", on: db)
        }
        return try Self.json(values.keys.sorted())
    }

    private func memberOrg(of caller: Principal) throws -> String {
        try caller.org(atLeast: .member, to: "Reading installs")
    }

    private func adminOrg(of caller: Principal) throws -> String {
        try caller.org(atLeast: .admin, to: "Installing and changing apps")
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func strings(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }
}
