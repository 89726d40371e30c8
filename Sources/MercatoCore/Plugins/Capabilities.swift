public import MercatoHooks

/// Everything the registered plugins add up to: the scopes apps may ask for, the commands the
/// gateway can route, and the event types apps may subscribe to (the host's own plus the ones
/// plugins emit). Built once at start from the plugins' manifests.
public struct Capabilities: Sendable {
    public let scopes: [String: ScopeDefinition]
    /// Command name → the plugin that serves it and its definition.
    public let commands: [String: (plugin: String, definition: CommandDefinition)]
    public let eventTypes: Set<String>

    /// Event types the host itself emits.
    public static let hostEventTypes: Set<String> = [
        "app.installed", "app.uninstalled", "app.enabled", "app.disabled",
        "install.config_updated", "install.upgraded",
        "connection.connected", "connection.disconnected", "connection.refresh_failed",
    ]

    /// Fails when two plugins claim the same command or scope, or a plugin id repeats.
    public init(manifests: [PluginManifest]) throws {
        var scopes: [String: ScopeDefinition] = [:]
        var commands: [String: (plugin: String, definition: CommandDefinition)] = [:]
        var events = Self.hostEventTypes
        var ids = Set<String>()
        for manifest in manifests {
            guard ids.insert(manifest.id).inserted else { throw CapabilityConflict("plugin id `\(manifest.id)` is registered twice") }
            if let bytes = manifest.installStorageBytes, bytes <= 0 {
                throw CapabilityConflict("plugin `\(manifest.id)` declares an install storage of \(bytes) bytes; it must be positive")
            }
            for scope in manifest.scopes {
                guard scopes[scope.name] == nil else { throw CapabilityConflict("scope `\(scope.name)` is defined by two plugins") }
                scopes[scope.name] = scope
            }
            for command in manifest.commands {
                guard commands[command.name] == nil else { throw CapabilityConflict("command `\(command.name)` is served by two plugins") }
                commands[command.name] = (manifest.id, command)
            }
            events.formUnion(manifest.emits)
        }
        for (name, entry) in commands {
            for scope in entry.definition.requiredScopes where scopes[scope] == nil {
                throw CapabilityConflict("command `\(name)` needs scope `\(scope)`, which no plugin defines")
            }
        }
        self.scopes = scopes
        self.commands = commands
        self.eventTypes = events
    }
}

/// Two plugins claim the same thing; the server refuses to start.
public struct CapabilityConflict: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
