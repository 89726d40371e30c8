public import Foundation
import MercatoCrypto
public import MercatoHooks
public import MercatoStorage
import SQLKit

/// The app registry: developers register apps and versions, publish them and rotate their
/// secrets; org members browse the catalog.
public struct RegistryService: Sendable {
    public let database: Database
    public let secrets: SecretStore
    public let capabilities: Capabilities
    public let clock: WallClock
    /// Every stored manifest, decoded once.
    public let manifests: Manifests
    /// How long a rotated-out secret keeps verifying.
    public var secretOverlap: TimeInterval = 24 * 3600

    public init(database: Database, secrets: SecretStore, capabilities: Capabilities, manifests: Manifests, clock: WallClock) {
        self.database = database
        self.manifests = manifests
        self.secrets = secrets
        self.capabilities = capabilities
        self.clock = clock
    }

    /// An app as its developer sees it right after a change; `newSecrets` holds secret texts
    /// created by that change (shown once).
    public struct Registered: Sendable {
        public var app: AppRecord
        public var manifest: AppManifest
        public var newSecrets: [String: String]
    }

    public enum SecretKind: String, Sendable, CaseIterable {
        case webhook
        case command
    }

    // MARK: Developer side

    /// Validates `document` against the contract and this server's plugins and providers.
    public func validate(_ document: JSONValue) async throws -> AppManifest {
        let providers = Set(try await database.read { try await ProviderStore.keys(on: $0) })
        switch ManifestValidator(capabilities: capabilities, providers: providers).validate(document) {
        case .success(let manifest): return manifest
        case .failure(let problems): throw problems.apiError
        }
    }

    /// Registers a new app as a draft of the caller's org; answers its secrets once.
    public func register(_ document: JSONValue, by caller: Principal, requestID: String? = nil) async throws -> Registered {
        let org = try developerOrg(of: caller)
        return try await register(try await validate(document), developerOrg: org, actor: caller.actorID, requestID: requestID)
    }

    /// Registers a validated manifest for `developerOrg` (also used by the catalog import).
    public func register(_ manifest: AppManifest, developerOrg: String, status: String = "draft", actor: String = "catalog",
                         requestID: String? = nil) async throws -> Registered {
        let now = clock.millis
        let app = AppRecord(id: RecordID.make("app", millis: now), key: manifest.key, developerOrgId: developerOrg, status: status,
                            latestVersion: manifest.version, name: manifest.name, plan: manifest.plan.rawValue,
                            searchText: Self.searchText(manifest), createdAt: now, updatedAt: now)
        let created = try await database.transaction { db -> [String: String] in
            if try await AppStore.find(key: manifest.key, on: db) != nil {
                throw APIError(status: 409, code: "app_key_taken", title: "App key taken",
                               detail: "An app with key `\(manifest.key)` already exists; choose another key.")
            }
            try await AppStore.insert(app, on: db)
            try await AppStore.insertVersion(appID: app.id, version: manifest.version, manifestJSON: try Manifests.encode(manifest), at: now, on: db)
            try await AppStore.setCategories(appID: app.id, manifest.categories, on: db)
            var created = ["webhook": try await createSecret(for: app, kind: .webhook, at: now, on: db)]
            if manifest.commandSigning.type == "hmac" {
                created["command"] = try await createSecret(for: app, kind: .command, at: now, on: db)
            }
            try await ActivityLog.record(org: developerOrg, actor: actor, action: "app.registered", target: app.key, requestID: requestID,
                                         details: ["version": .string(manifest.version), "status": .string(status)], at: now, on: db)
            return created
        }
        return Registered(app: app, manifest: manifest, newSecrets: created)
    }

    /// Adds a new version (its semver must be greater than every earlier one).
    public func addVersion(key: String, document: JSONValue, by caller: Principal, requestID: String? = nil) async throws -> Registered {
        let org = try developerOrg(of: caller)
        let manifest = try await validate(document)
        guard manifest.key == key else {
            throw ManifestProblems(errors: [.init(field: "key", message: "is `\(manifest.key)`, but this is the app `\(key)`")]).apiError
        }
        return try await addVersion(manifest, appKey: key, developerOrg: org, actor: caller.actorID, requestID: requestID)
    }

    /// Adds a validated version to an app of `developerOrg`.
    public func addVersion(_ manifest: AppManifest, appKey key: String, developerOrg org: String, actor: String = "catalog",
                           requestID: String? = nil) async throws -> Registered {
        let now = clock.millis
        return try await database.transaction { db -> Registered in
            var app = try await ownedApp(key, org: org, on: db)
            guard let latest = Semver(app.latestVersion), manifest.semver > latest else {
                throw APIError(status: 409, code: "version_not_increased", title: "Version must grow",
                               detail: "Version \(manifest.version) is not greater than the latest version \(app.latestVersion).")
            }
            try await AppStore.insertVersion(appID: app.id, version: manifest.version, manifestJSON: try Manifests.encode(manifest), at: now, on: db)
            try await AppStore.setCategories(appID: app.id, manifest.categories, on: db)
            app.latestVersion = manifest.version
            app.name = manifest.name
            app.plan = manifest.plan.rawValue
            app.searchText = Self.searchText(manifest)
            app.updatedAt = now
            try await AppStore.update(app, on: db)
            var created: [String: String] = [:]
            if manifest.commandSigning.type == "hmac",
               try await AppStore.validSecrets(appID: app.id, kind: SecretKind.command.rawValue, at: now, on: db).isEmpty {
                created["command"] = try await createSecret(for: app, kind: .command, at: now, on: db)
            }
            try await ActivityLog.record(org: org, actor: actor, action: "app.version_added", target: app.key, requestID: requestID,
                                         details: ["version": .string(manifest.version)], at: now, on: db)
            return Registered(app: app, manifest: manifest, newSecrets: created)
        }
    }

    /// `published` (visible in every org's catalog) or `unlisted` (hidden from new installs).
    public func setStatus(key: String, to status: String, by caller: Principal, requestID: String? = nil) async throws -> AppRecord {
        let org = try developerOrg(of: caller)
        return try await database.transaction { db -> AppRecord in
            var app = try await ownedApp(key, org: org, on: db)
            switch (app.status, status) {
            case (_, "published"), ("published", "unlisted"), ("unlisted", "unlisted"):
                break
            default:
                throw APIError(status: 409, code: "invalid_status_change", title: "Status change not allowed",
                               detail: "An app in status `\(app.status)` cannot become `\(status)`; publish it first.")
            }
            app.status = status
            app.updatedAt = clock.millis
            try await AppStore.update(app, on: db)
            try await ActivityLog.record(org: org, actor: caller.actorID, action: "app.\(status)", target: app.key, requestID: requestID,
                                         at: app.updatedAt, on: db)
            return app
        }
    }

    /// A new secret of `kind`, shown once; the previous one keeps verifying for ``secretOverlap``.
    /// Secrets already in an earlier overlap stop at once, so at most two verify at a time.
    public func rotateSecret(key: String, kind: SecretKind, by caller: Principal, requestID: String? = nil) async throws -> (secret: String, previousValidUntil: Date?) {
        let org = try developerOrg(of: caller)
        let now = clock.millis
        let until = now + Int64(secretOverlap * 1000)
        return try await database.transaction { db in
            let app = try await ownedApp(key, org: org, on: db)
            if kind == .command {
                let manifest = try await latestManifest(app, on: db)
                guard manifest.commandSigning.type == "hmac" else {
                    throw APIError(status: 409, code: "command_signing_not_hmac", title: "No command secret",
                                   detail: "App `\(key)` signs commands with ed25519; publish a version with a new public key instead.")
                }
            }
            var previousUntil: Date?
            for secret in try await AppStore.validSecrets(appID: app.id, kind: kind.rawValue, at: now, on: db) {
                if secret.validUntil == nil {
                    try await AppStore.expireSecret(id: secret.id, at: until, on: db)
                    previousUntil = Timestamp.date(millis: until)
                } else {
                    try await AppStore.expireSecret(id: secret.id, at: now, on: db)
                }
            }
            let text = try await createSecret(for: app, kind: kind, at: now, on: db)
            try await ActivityLog.record(org: org, actor: caller.actorID, action: "app.secret_rotated", target: app.key, requestID: requestID,
                                         details: ["kind": .string(kind.rawValue)], at: now, on: db)
            return (text, previousUntil)
        }
    }

    /// The secret texts of `kind` that verify now, newest first.
    public func verificationSecrets(appID: String, kind: SecretKind) async throws -> [String] {
        let now = clock.millis
        return try await database.read { db in
            guard let app = try await AppStore.find(id: appID, on: db) else { return [] }
            var out: [String] = []
            for secret in try await AppStore.validSecrets(appID: appID, kind: kind.rawValue, at: now, on: db) {
                let context = SealContext(org: app.developerOrgId, owner: app.id, purpose: "secret.\(secret.id)")
                if let text = try await secrets.get(context, on: db) { out.append(text) }
            }
            return out
        }
    }

    /// The secrets of `kind` of `app` valid now or later, newest first, with when each stops
    /// verifying (nil: until rotated), read on `db` (the gateway caches them and filters by time).
    func verificationSecrets(of app: AppRecord, kind: SecretKind, on db: any SQLDatabase) async throws -> [(text: String, validUntil: Int64?)] {
        var out: [(text: String, validUntil: Int64?)] = []
        for secret in try await AppStore.validSecrets(appID: app.id, kind: kind.rawValue, at: clock.millis, on: db) {
            let context = SealContext(org: app.developerOrgId, owner: app.id, purpose: "secret.\(secret.id)")
            if let text = try await secrets.get(context, on: db) { out.append((text, secret.validUntil)) }
        }
        return out
    }

    /// What a developer sees of one of their apps.
    public struct DeveloperView: Sendable {
        public var app: AppRecord
        public var manifest: AppManifest
        public var versions: [String]
        public var secrets: [AppSecretRecord]
    }

    public func developerApps(by caller: Principal) async throws -> [AppRecord] {
        let org = try developerOrg(of: caller)
        return try await database.read { try await AppStore.apps(ofOrg: org, on: $0) }
    }

    public func developerApp(key: String, by caller: Principal) async throws -> DeveloperView {
        let org = try developerOrg(of: caller)
        let now = clock.millis
        return try await database.read { db in
            let app = try await ownedApp(key, org: org, on: db)
            let secrets = try await AppStore.allSecrets(appID: app.id, on: db).filter { $0.validUntil.map { $0 > now } ?? true }
            return DeveloperView(app: app, manifest: try await latestManifest(app, on: db),
                                 versions: try await AppStore.versions(appID: app.id, on: db), secrets: secrets)
        }
    }

    // MARK: Catalog side

    /// One catalog entry: the latest manifest and whether the caller's org may install it.
    public struct CatalogEntry: Sendable {
        public var app: AppRecord
        public var manifest: AppManifest
        public var installable: Bool
        public var notInstallableReason: String?
    }

    /// A page of the catalog for the caller's org.
    public func catalog(for caller: Principal, query: String?, category: String?, cursor: String?, limit: Int) async throws -> (entries: [CatalogEntry], nextCursor: String?) {
        let words = (query ?? "").lowercased().split(whereSeparator: { $0.isWhitespace }).prefix(8).map(String.init)
        let after = try cursor.map(Self.decodeCursor) ?? ""
        let (rows, plan) = try await database.read { db in
            let rows = try await AppStore.catalog(visibleTo: caller.orgID, words: words, category: category, afterKey: after, limit: limit + 1, on: db)
            return (rows, try await orgPlan(caller, on: db))
        }
        let page = rows.prefix(limit)
        let entries = try page.map { try entry($0.app, manifestJSON: $0.manifestJSON, orgPlan: plan) }
        let next = rows.count > limit ? page.last.map { Self.encodeCursor($0.app.key) } : nil
        return (entries, next)
    }

    /// One app of the catalog; an app the caller may not see answers 404.
    public func catalogApp(key: String, for caller: Principal) async throws -> CatalogEntry {
        try await database.read { db in
            guard let app = try await AppStore.find(key: key, on: db),
                  app.status == "published" || app.developerOrgId == caller.orgID,
                  let json = try await AppStore.manifest(appID: app.id, version: app.latestVersion, on: db)
            else { throw APIError.notFound("App \(key)") }
            return try entry(app, manifestJSON: json, orgPlan: try await orgPlan(caller, on: db))
        }
    }

    // MARK: Internals

    private func entry(_ app: AppRecord, manifestJSON: String, orgPlan: Plan?) throws -> CatalogEntry {
        let manifest = try manifests.manifest(appID: app.id, version: app.latestVersion, json: manifestJSON)
        var installable = app.status != "unlisted"
        var reason: String? = installable ? nil : "The developer has unlisted this app; it takes no new installs."
        if installable, let orgPlan, manifest.plan > orgPlan {
            installable = false
            reason = "Requires the \(manifest.plan.rawValue) plan; this org is on \(orgPlan.rawValue)."
        }
        return CatalogEntry(app: app, manifest: manifest, installable: installable, notInstallableReason: reason)
    }

    private func orgPlan(_ caller: Principal, on db: any SQLDatabase) async throws -> Plan? {
        guard let org = caller.orgID, let record = try await OrgStore.find(id: org, on: db) else { return nil }
        return Plan(rawValue: record.plan)
    }

    func developerOrg(of caller: Principal) throws -> String {
        try caller.org(atLeast: .developer, to: "Managing apps")
    }

    private func ownedApp(_ key: String, org: String, on db: any SQLDatabase) async throws -> AppRecord {
        guard let app = try await AppStore.find(key: key, on: db), app.developerOrgId == org else {
            throw APIError.notFound("App \(key)")
        }
        return app
    }

    func latestManifest(_ app: AppRecord, on db: any SQLDatabase) async throws -> AppManifest {
        guard let manifest = try await manifests.manifest(appID: app.id, version: app.latestVersion, on: db) else {
            throw APIError.notFound("App \(app.key) version \(app.latestVersion)")
        }
        return manifest
    }

    private func createSecret(for app: AppRecord, kind: SecretKind, at now: Int64, on db: any SQLDatabase) async throws -> String {
        let text = "whsec_" + Data(SecureRandom.bytes(32)).base64EncodedString()
        let record = AppSecretRecord(id: RecordID.make("sec", millis: now), appId: app.id, kind: kind.rawValue, createdAt: now, validUntil: nil)
        try await AppStore.insertSecret(record, on: db)
        try await secrets.put(text, for: SealContext(org: app.developerOrgId, owner: app.id, purpose: "secret.\(record.id)"), on: db)
        return text
    }

    static func searchText(_ m: AppManifest) -> String { (m.name + " " + m.description).lowercased() }

    static func encodeCursor(_ key: String) -> String { Data(("k:" + key).utf8).base64URLEncodedString() }

    static func decodeCursor(_ cursor: String) throws -> String {
        guard let data = Data(base64Lenient: cursor), let text = String(data: data, encoding: .utf8), text.hasPrefix("k:") else {
            throw APIError.invalidRequest("`cursor` is not a cursor this list handed out.", errors: [.init(field: "cursor", message: "is not valid")])
        }
        return String(text.dropFirst(2))
    }
}
