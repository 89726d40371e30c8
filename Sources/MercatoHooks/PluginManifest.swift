/// What a plugin declares about itself; the host reads it once at start.
///
/// Two plugins claiming one id, scope or command stop the server at start, and so does a
/// command needing a scope no plugin defines. See <doc:WritingAPlugin>.
public struct PluginManifest: Sendable {
    /// Stable id (`kv`, `tasks`); namespaces the plugin's storage and metrics.
    public var id: String
    /// The plugin's version, for operators.
    public var version: String
    /// Scopes the plugin defines; apps may ask for these in their manifests.
    public var scopes: [ScopeDefinition]
    /// Commands it serves.
    public var commands: [CommandDefinition]
    /// Event types it may emit.
    public var emits: [String]
    /// Management API routes it adds under `/api/v1/`, answered by ``MercatoPlugin/handleRoute(_:_:)``.
    public var routes: [RouteDefinition]
    /// Unauthenticated routes it adds under `/api/v1/`, answered by ``MercatoPlugin/handlePublicRoute(_:_:)``.
    public var publicRoutes: [PublicRouteDefinition]
    /// `true` when the plugin reads its keys across an org's installs
    /// (``OrgStorage/entries(prefix:after:limit:newestFirst:)`` and ``OrgStorage/find(_:)``).
    /// The host then keeps the plugin's keys in an index by org, which costs each new key one
    /// more page written; a plugin that reads only one namespace at a time leaves it `false`,
    /// and its org-wide reads fail. Turned on in a later release, the keys already stored are
    /// indexed at the next start.
    public var orgWideReads: Bool
    /// The bytes (keys and values) the plugin may keep in one install's namespace; `nil` takes
    /// the host's default of 10 MiB. A write past it is refused with 413 `quota_exceeded`. A
    /// plugin whose records grow with an install's traffic (one per received event, say)
    /// declares what that traffic needs.
    public var installStorageBytes: Int?

    /// A manifest; every list but the id and version may be left out.
    public init(id: String, version: String, scopes: [ScopeDefinition] = [], commands: [CommandDefinition] = [], emits: [String] = [],
                routes: [RouteDefinition] = [], publicRoutes: [PublicRouteDefinition] = [], orgWideReads: Bool = false,
                installStorageBytes: Int? = nil) {
        self.id = id
        self.version = version
        self.scopes = scopes
        self.commands = commands
        self.emits = emits
        self.routes = routes
        self.publicRoutes = publicRoutes
        self.orgWideReads = orgWideReads
        self.installStorageBytes = installStorageBytes
    }
}
