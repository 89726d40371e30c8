/// A command a plugin answers, with the scopes it needs and the shape of its `args`.
public struct CommandDefinition: Sendable {
    /// Dotted name (`kv.set`).
    public var name: String
    /// One line for the command's documentation.
    public var summary: String
    /// Every one of these must be granted to the install (else 403 `scope_missing`).
    public var requiredScopes: [String]
    /// The members `args` may have; the host refuses others (422 `invalid_args`).
    public var args: [ArgField]
    /// The answer carries secrets (config in clear, an access token): the host keeps it for
    /// idempotent replay only sealed, bound to the install.
    public var answerHoldsSecrets: Bool

    /// A command named `name`.
    public init(_ name: String, summary: String, requiredScopes: [String] = [], args: [ArgField] = [], answerHoldsSecrets: Bool = false) {
        self.name = name
        self.summary = summary
        self.requiredScopes = requiredScopes
        self.args = args
        self.answerHoldsSecrets = answerHoldsSecrets
    }
}
