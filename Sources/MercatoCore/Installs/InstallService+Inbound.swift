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

    /// The install row read for the public request being served (``servingActiveInstall(_:_:)``),
    /// so a later question about the same install in that request does not read it again.
    @TaskLocal static var servedInstall: InstallRecord?

    /// Runs `body` with the install `id` when it exists and is active, as plugins see installs;
    /// `nil` without running it otherwise (uninstalled, disabled, waiting for OAuth, or never
    /// there). One read of the install's row, which ``inboundSecret(_:provider:)`` reuses
    /// within `body`; the org's name comes from ``InboundTargets`` while the row is unchanged.
    public func servingActiveInstall<R: Sendable>(_ id: String, _ body: (InstallInfo) async throws -> R) async throws -> R? {
        guard RecordID.isValid(id, prefix: "ins") else { return nil }
        guard let install = try await database.read({ try await InstallStore.live(id: id, on: $0) }), install.status == .active else {
            inboundTargets.remove(id)
            return nil
        }
        let orgName: String
        if let entry = inboundTargets.get(install) {
            orgName = entry.orgName
        } else {
            guard let org = try await database.read({ try await OrgStore.find(id: install.orgId, on: $0) }) else { return nil }
            orgName = org.name
            inboundTargets.put(InboundTargets.Entry(install: install, orgName: orgName, loadedAt: .now))
        }
        let info = InstallInfo(installID: install.id, orgID: install.orgId, orgName: orgName, appKey: install.appKey, appVersion: install.version,
                               grantedScopes: install.scopes, status: install.status.rawValue)
        return try await Self.$servedInstall.withValue(install) { try await body(info) }
    }

    /// The value of the secret config field the install's app declares for `provider` in its
    /// manifest's `inbound`, `nil` when it declares none or the field is empty. One read of the
    /// install's row (none while serving a request for it); the opened value comes from
    /// ``InboundTargets`` while the row is unchanged.
    public func inboundSecret(_ id: String, provider: String) async throws -> String? {
        let install: InstallRecord?
        if let served = Self.servedInstall, served.id == id {
            install = served
        } else {
            install = try await database.read { try await InstallStore.live(id: id, on: $0) }
        }
        guard let install else {
            inboundTargets.remove(id)
            return nil
        }
        if let kept = inboundTargets.get(install)?.secrets[provider] { return kept }
        let secret = try await database.read { db -> String? in
            guard let manifest = try await manifests.manifest(appID: install.appId, version: install.version, on: db),
                  let declaration = manifest.inbound?.first(where: { $0.provider == provider }),
                  manifest.config.contains(where: { $0.key == declaration.secretField && $0.isSecret }) else { return nil }
            guard install.configKeys.contains(declaration.secretField) else { return nil }
            // That one field's sealed value only, not the whole config: one row, one decryption.
            guard let text = try await secrets.get(Self.configContext(install, declaration.secretField), on: db) else { return nil }
            let value = try JSONCoding.value(JSONValue.self, from: text).stringValue
            return value.flatMap { $0.isEmpty ? nil : $0 }
        }
        inboundTargets.keep(secret: secret, provider: provider, for: install)
        return secret
    }
}
