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
    /// Management API routes it adds under `/api/v1/`, answered by ``MercatoPlugin/handleRoute(_:_:)``.
    public var routes: [RouteDefinition]

    public init(id: String, version: String, scopes: [ScopeDefinition] = [], commands: [CommandDefinition] = [], emits: [String] = [],
                routes: [RouteDefinition] = []) {
        self.id = id
        self.version = version
        self.scopes = scopes
        self.commands = commands
        self.emits = emits
        self.routes = routes
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

/// A command a plugin answers, with the scopes it needs and the shape of its `args`.
public struct CommandDefinition: Sendable {
    /// Dotted name (`kv.set`).
    public var name: String
    public var summary: String
    /// Every one of these must be granted to the install.
    public var requiredScopes: [String]
    /// The members `args` may have; the host refuses others (422 `invalid_args`).
    public var args: [ArgField]
    /// The answer carries secrets (config in clear, an access token): the host keeps it for
    /// idempotent replay only sealed, bound to the install.
    public var answerHoldsSecrets: Bool

    public init(_ name: String, summary: String, requiredScopes: [String] = [], args: [ArgField] = [], answerHoldsSecrets: Bool = false) {
        self.name = name
        self.summary = summary
        self.requiredScopes = requiredScopes
        self.args = args
        self.answerHoldsSecrets = answerHoldsSecrets
    }
}

/// One member of a command's `args` object.
public struct ArgField: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A string of at most `maxLength` characters.
        case string(maxLength: Int)
        case number
        case bool
        /// Any JSON value whose encoding is at most `maxBytes` bytes.
        case json(maxBytes: Int)
    }

    public var name: String
    public var kind: Kind
    public var required: Bool

    public init(_ name: String, _ kind: Kind, required: Bool = false) {
        self.name = name
        self.kind = kind
        self.required = required
    }
}
