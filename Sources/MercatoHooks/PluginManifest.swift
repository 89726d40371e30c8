/// What a plugin declares about itself; the host reads it at registration.
public struct PluginManifest: Sendable {
    /// Stable id (`kv`, `tasks`); namespaces the plugin's storage and metrics.
    public var id: String
    public var version: String
    /// Scopes the plugin defines; apps may ask for these in their manifests.
    public var scopes: [ScopeDefinition]
    /// Commands it serves.
    public var commands: [CommandDefinition]
    /// Event types it may emit.
    public var emits: [String]

    public init(id: String, version: String, scopes: [ScopeDefinition] = [], commands: [CommandDefinition] = [], emits: [String] = []) {
        self.id = id
        self.version = version
        self.scopes = scopes
        self.commands = commands
        self.emits = emits
    }
}

/// A permission an app can be granted.
public struct ScopeDefinition: Sendable, Hashable {
    public var name: String
    public var summary: String
    public init(_ name: String, summary: String) {
        self.name = name
        self.summary = summary
    }
}

/// A command a plugin answers, with the scopes it needs.
public struct CommandDefinition: Sendable {
    /// Dotted name (`kv.set`).
    public var name: String
    public var summary: String
    /// Every one of these must be granted to the install.
    public var requiredScopes: [String]

    public init(_ name: String, summary: String, requiredScopes: [String] = []) {
        self.name = name
        self.summary = summary
        self.requiredScopes = requiredScopes
    }
}
