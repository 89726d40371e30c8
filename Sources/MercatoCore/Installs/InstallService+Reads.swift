import Foundation
public import MercatoHooks
import MercatoStorage
import SQLKit

/// What installs look like to the org's members, and their config as the app itself reads it.
extension InstallService {
    public func list(by caller: Principal, cursor: String?, limit: Int) async throws -> (views: [View], nextCursor: String?) {
        let org = try memberOrg(of: caller)
        let after = cursor ?? ""
        if let cursor, !RecordID.isValid(cursor, prefix: "ins") {
            throw APIError.invalidRequest("`cursor` is not a cursor this list handed out.", errors: [.init(field: "cursor", message: "is not valid")])
        }
        return try await database.read { db in
            let rows = try await InstallStore.page(org: org, afterID: after, limit: limit + 1, on: db)
            // Every config of the page in one statement, not one per install.
            let page = Array(rows.prefix(limit))
            let sealed = try await SealedValueStore.all(owners: page.filter { !$0.configKeys.isEmpty }.map(\.id), on: db)
            var views: [View] = []
            for row in page { views.append(try await view(row, sealed: sealed[row.id] ?? [], on: db)) }
            return (views, rows.count > limit ? rows.prefix(limit).last?.id : nil)
        }
    }

    public func get(_ id: String, by caller: Principal) async throws -> View {
        let org = try memberOrg(of: caller)
        return try await database.read { db in
            guard let (install, sealed) = try await InstallStore.liveWithSealed(id: id, on: db), install.orgId == org else {
                throw APIError.notFound("Install \(id)")
            }
            return try await view(install, sealed: sealed, on: db)
        }
    }

    /// The config with secret fields in clear: only for the app itself (`install.config`).
    public func configInClear(_ installID: String) async throws -> [String: JSONValue] {
        try await database.read { db in
            guard let (install, sealed) = try await InstallStore.liveWithSealed(id: installID, on: db) else { throw APIError.notFound("Install \(installID)") }
            return try openConfig(install, sealed: sealed)
        }
    }

    /// A live install of the caller's org with its version's manifest (admin+ reads for the
    /// OAuth services).
    func installAndManifest(_ installID: String, org: String) async throws -> (InstallRecord, AppManifest) {
        try await database.read { db in
            guard let install = try await InstallStore.live(id: installID, on: db), install.orgId == org else { throw APIError.notFound("Install \(installID)") }
            guard let manifest = try await manifests.manifest(appID: install.appId, version: install.version, on: db) else {
                throw APIError.notFound("App version \(install.version)")
            }
            return (install, manifest)
        }
    }

    /// `install` as its members see it: its config opened from `sealed`, the secret fields of
    /// its version's manifest masked.
    private func view(_ install: InstallRecord, sealed: [SealedValueRecord], on db: any SQLDatabase) async throws -> View {
        guard let manifest = try await manifests.manifest(appID: install.appId, version: install.version, on: db) else {
            throw APIError.notFound("App version \(install.version)")
        }
        let secret = Set(manifest.config.lazy.filter(\.isSecret).map(\.key))
        return View(install: install, config: try openConfig(install, sealed: sealed, masking: secret), manifest: manifest)
    }
}
