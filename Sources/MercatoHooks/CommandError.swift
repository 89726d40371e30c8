/// A failure a plugin reports to the caller: an HTTP status, a stable code, a sentence.
///
/// The host answers it as Problem Details with that status and code. It is the caller's
/// mistake, not the plugin's: it does not count toward the crash-loop rule. Never put secrets
/// or config values in the message.
public struct CommandError: Error, Sendable, Equatable {
    /// The HTTP status of the answer (4xx, or 503 for something to retry).
    public var status: Int
    /// A stable, machine-readable code (`invalid_args`, `not_found`, ...).
    public var code: String
    /// A sentence for a person.
    public var message: String

    /// An error with any status and code.
    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// 404 `unknown_command`: no plugin answers `name`.
    public static func unknownCommand(_ name: String) -> CommandError {
        CommandError(status: 404, code: "unknown_command", message: "No plugin answers `\(name)`.")
    }
    /// 422 `invalid_args`: a command's argument `field` is wrong; `message` says how.
    public static func invalidArgs(field: String, _ message: String) -> CommandError {
        CommandError(status: 422, code: "invalid_args", message: "`\(field)` \(message)")
    }
    /// 404 `not_found`.
    public static func notFound(_ message: String) -> CommandError {
        CommandError(status: 404, code: "not_found", message: message)
    }
    /// 403 with `code` (`forbidden` unless told).
    public static func forbidden(code: String = "forbidden", _ message: String) -> CommandError {
        CommandError(status: 403, code: code, message: message)
    }
    /// 422 `invalid_request`: a route's input `field` is wrong; `message` says how.
    public static func invalidRequest(field: String, _ message: String) -> CommandError {
        CommandError(status: 422, code: "invalid_request", message: "`\(field)` \(message)")
    }
}
