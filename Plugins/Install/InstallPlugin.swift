public import MercatoHooks

/// `ping`, `install.info` and `install.config`: an app's view of its own install.
public struct InstallPlugin: MercatoPlugin {
    public init() {}

    public static let manifest = PluginManifest(
        id: "install",
        version: "1.0.0",
        scopes: [
            ScopeDefinition("install:read", summary: "Read the install's id, org, app version, granted scopes and status."),
            ScopeDefinition("config:read", summary: "Read the install's configuration, secret fields included."),
        ],
        commands: [
            CommandDefinition("ping", summary: "Answers {\"pong\": true}; checks signing end to end."),
            CommandDefinition("install.info", summary: "The install's id, org, app, version, scopes and status.", requiredScopes: ["install:read"]),
            CommandDefinition("install.config", summary: "The install's config with secret fields in clear.", requiredScopes: ["config:read"], answerHoldsSecrets: true),
        ]
    )

    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        switch command.command {
        case "ping":
            return .object(["pong": .bool(true)])
        case "install.info":
            let i = command.install
            return .object([
                "install_id": .string(i.installID), "org_id": .string(i.orgID), "org_name": .string(i.orgName),
                "app": .string(i.appKey), "version": .string(i.appVersion),
                "scopes": .array(i.grantedScopes.map(JSONValue.string)), "status": .string(i.status),
            ])
        case "install.config":
            return .object(["config": .object(try await context.api.config(of: command.install.installID))])
        default:
            throw CommandError.unknownCommand(command.command)
        }
    }
}
