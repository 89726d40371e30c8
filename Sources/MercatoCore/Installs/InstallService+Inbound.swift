import Foundation
public import MercatoHooks
import MercatoStorage
import SQLKit

/// What the inbound provider webhooks (CONTRACT §11) need of installs: the install a public
/// route names, and the one secret config field its app declares for a provider.
extension InstallService {
    /// Where each provider the install's app declares posts (CONTRACT §11): `(provider, url)`
    /// under the server's public URL, in the manifest's order; the API and the install page show it.
    public static func inboundURLs(of view: View, publicURL: String) -> [(provider: String, url: String)] {
        (view.manifest.inbound ?? []).map { ($0.provider, "\(publicURL)/api/v1/inbound/\(view.install.id)/\($0.provider)") }
    }

    /// The install `id` when it exists and is active, as plugins see installs; `nil` otherwise
    /// (uninstalled, disabled, waiting for OAuth, or never there).
    public func activeInstallInfo(_ id: String) async throws -> InstallInfo? {
        guard RecordID.isValid(id, prefix: "ins") else { return nil }
        return try await database.read { db in
            guard let install = try await InstallStore.live(id: id, on: db), install.status == .active,
                  let org = try await OrgStore.find(id: install.orgId, on: db) else { return nil }
            return InstallInfo(installID: install.id, orgID: install.orgId, orgName: org.name, appKey: install.appKey, appVersion: install.version,
                               grantedScopes: install.scopes, status: install.status.rawValue)
        }
    }

    /// The value of the secret config field the install's app declares for `provider` in its
    /// manifest's `inbound`, `nil` when it declares none or the field is empty.
    public func inboundSecret(_ id: String, provider: String) async throws -> String? {
        try await database.read { db in
            guard let install = try await InstallStore.live(id: id, on: db),
                  let manifest = try await manifests.manifest(appID: install.appId, version: install.version, on: db),
                  let declaration = manifest.inbound?.first(where: { $0.provider == provider }),
                  manifest.config.contains(where: { $0.key == declaration.secretField && $0.isSecret }) else { return nil }
            guard install.configKeys.contains(declaration.secretField) else { return nil }
            // That one field's sealed value only, not the whole config: one row, one decryption.
            guard let text = try await secrets.get(Self.configContext(install, declaration.secretField), on: db) else { return nil }
            let value = try JSONCoding.value(JSONValue.self, from: text).stringValue
            return value.flatMap { $0.isEmpty ? nil : $0 }
        }
    }
}
