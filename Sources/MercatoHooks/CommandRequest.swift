/// A command after the host verified its signature, idempotency, rate limit, scopes and
/// `args` (against the ``CommandDefinition`` of the manifest).
public struct CommandRequest: Sendable {
    /// The command's id (`cmd_...`), stable across an idempotent replay.
    public var id: String
    /// The command's dotted name, one of the manifest's ``CommandDefinition/name``.
    public var command: String
    /// The `args` object, holding only members the definition names, of the declared kinds.
    public var args: [String: JSONValue]
    /// The install that sent the command.
    public var install: InstallInfo

    /// A command as the host hands it (tests build one with `FakeHost.command`).
    public init(id: String, command: String, args: [String: JSONValue], install: InstallInfo) {
        self.id = id
        self.command = command
        self.args = args
        self.install = install
    }
}
