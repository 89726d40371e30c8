public import Logging

/// Gives a grant back to its provider (RFC 7009), after the tokens were destroyed here: on
/// disconnect, uninstall, an upgrade that leaves the provider, a reconnect that replaced the
/// grant, and tokens that arrived for a connection that was gone meanwhile.
public struct ConnectionRevoker: Sendable {
    /// Tokens taken out of storage, to revoke at their provider.
    public struct Grant: Sendable {
        var access: String?
        var refresh: String?
        var providerKey: String
    }

    let providers: ProviderService
    let client: OAuthClient
    let logger: Logger

    public init(providers: ProviderService, settings: Settings, logger: Logger) {
        self.providers = providers
        self.client = OAuthClient(timeout: .seconds(settings.oauthTimeoutSeconds))
        self.logger = logger
    }

    /// Revokes `grant` at its provider; `true` when the provider confirmed every revocation
    /// (`false` too when there was nothing to revoke or the provider is gone).
    @discardableResult
    func revoke(_ grant: Grant?) async -> Bool {
        guard let grant, grant.access != nil || grant.refresh != nil,
              let provider = try? await providers.resolve(grant.providerKey) else { return false }
        return await revoke(access: grant.access, refresh: grant.refresh, provider: provider)
    }

    /// Revokes what is given, the refresh token first (that ends the grant).
    @discardableResult
    func revoke(access: String?, refresh: String?, provider: ResolvedProvider) async -> Bool {
        guard provider.definition.revokeURL != nil else { return false }
        var confirmed = true
        if let refresh { confirmed = await client.revoke(refresh, hint: "refresh_token", provider: provider) && confirmed }
        if let access { confirmed = await client.revoke(access, hint: "access_token", provider: provider) && confirmed }
        if !confirmed { logger.warning("oauth revocation not confirmed by the provider", metadata: ["provider": "\(provider.definition.key)"]) }
        return confirmed
    }
}
