import MercatoCrypto
import MercatoStorage
import SQLKit

/// Where an install's OAuth tokens and a connect flow's PKCE verifier are sealed. Tokens are
/// owned by the install (so an uninstall destroys them with the rest) and never leave the
/// core except as ``AccessToken`` to the app that asked.
enum ConnectionTokens {
    static func access(_ install: InstallRecord) -> SealContext { access(org: install.orgId, install: install.id) }
    static func refresh(_ install: InstallRecord) -> SealContext { refresh(org: install.orgId, install: install.id) }

    static func access(org: String, install: String) -> SealContext {
        SealContext(org: org, owner: install, purpose: "oauth.access_token")
    }

    static func refresh(org: String, install: String) -> SealContext {
        SealContext(org: org, owner: install, purpose: "oauth.refresh_token")
    }

    static func verifier(_ state: OAuthStateRecord) -> SealContext {
        SealContext(org: state.orgId, owner: state.id, purpose: "oauth.pkce_verifier")
    }

    /// Takes the install's tokens out of storage in the caller's transaction: they are deleted,
    /// and answered as the grant to revoke at `provider` once the transaction commits. A token
    /// that no longer opens is deleted all the same (there is nothing to give back).
    static func take(_ install: InstallRecord, provider: String, secrets: SecretStore, on db: any SQLDatabase) async throws -> ConnectionRevoker.Grant {
        let grant = ConnectionRevoker.Grant(access: try? await secrets.get(access(install), on: db),
                                            refresh: try? await secrets.get(refresh(install), on: db), providerKey: provider)
        try await SealedValueStore.delete(owner: install.id, purpose: access(install).purpose, on: db)
        try await SealedValueStore.delete(owner: install.id, purpose: refresh(install).purpose, on: db)
        return grant
    }
}
