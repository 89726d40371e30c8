public import MercatoHooks

/// Hands an app a fresh access token of its install's OAuth connection (`connections.token`).
/// The host keeps the tokens sealed and refreshes them; this plugin only asks for one.
public struct ConnectionsPlugin: MercatoPlugin {
    public init() {}

    public static let manifest = PluginManifest(
        id: "connections",
        version: "1.0.0",
        scopes: [ScopeDefinition("connections:token", summary: "Get the connected account's access token.")],
        commands: [
            CommandDefinition("connections.token", summary: "A fresh access token, refreshed first when near expiry.",
                              requiredScopes: ["connections:token"], answerHoldsSecrets: true),
        ]
    )

    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        switch command.command {
        case "connections.token":
            let token = try await context.api.accessToken(of: command.install.installID)
            return .object([
                "access_token": .string(token.token),
                "expires_at": token.expiresAt.map { .string(PluginSupport.timestamp($0)) } ?? .null,
                "scopes": .array(token.scopes.map(JSONValue.string)),
            ])
        default:
            throw CommandError.unknownCommand(command.command)
        }
    }
}
