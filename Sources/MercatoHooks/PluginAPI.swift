/// What the host offers plugins: the outbox, installs' config and access tokens.
///
/// A plugin gets it in ``MercatoPlugin/activate(_:)`` and in every context
/// (``HookContext/api``, ``OrgContext/api``).
public protocol PluginAPI: Sendable {
    /// Writes an event for `installID` into the outbox, in its own transaction.
    func emit(_ event: EventDraft, for installID: String) async throws
    /// The install's config, secret fields in clear. Never log or emit it.
    func config(of installID: String) async throws -> [String: JSONValue]
    /// A fresh access token of the install's OAuth connection, refreshed first when near
    /// expiry. Throws ``CommandError`` with `not_connected`, `needs_reconnect` (409) or
    /// `provider_unavailable` (503) when there is none to give.
    func accessToken(of installID: String) async throws -> AccessToken
    /// The secret the install keeps for the inbound provider `provider`: the config field its
    /// app's manifest names in `inbound`. `nil` when the install is gone or its app does not
    /// declare that provider (or the field is empty). Never log, answer or emit it.
    func inboundSecret(of installID: String, provider: String) async throws -> InboundSecret?
}

extension PluginAPI {
    /// `nil`: a host without inbound providers.
    public func inboundSecret(of installID: String, provider: String) async throws -> InboundSecret? { nil }
}
