/// A permission an app can be granted: apps ask for it in their manifests, org admins grant
/// it at install, and commands name it in ``CommandDefinition/requiredScopes``.
public struct ScopeDefinition: Sendable, Hashable {
    /// The scope's name (`kv:write`).
    public var name: String
    /// What it allows, in plain words, shown to the admin who grants it.
    public var summary: String

    /// A scope named `name`.
    public init(_ name: String, summary: String) {
        self.name = name
        self.summary = summary
    }
}
