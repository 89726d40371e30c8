public import MercatoHooks

/// Apps post notifications to their org's inbox; members read and dismiss them.
public struct NotificationsPlugin: MercatoPlugin {
    public init() {}

    public static let manifest = PluginManifest(
        id: "notifications",
        version: "1.0.0",
        scopes: [ScopeDefinition("notifications:write", summary: "Post notifications to the org's inbox.")],
        commands: [CommandDefinition("notifications.create", summary: "Post a notification.", requiredScopes: ["notifications:write"])]
    )
}
