public import MercatoHooks

/// Hands an app a fresh access token of its install's OAuth connection.
public struct ConnectionsPlugin: MercatoPlugin {
    public init() {}

    public static let manifest = PluginManifest(
        id: "connections",
        version: "1.0.0",
        scopes: [ScopeDefinition("connections:token", summary: "Get the connected account's access token.")],
        commands: [CommandDefinition("connections.token", summary: "A fresh access token, refreshed first when near expiry.", requiredScopes: ["connections:token"])]
    )
}
