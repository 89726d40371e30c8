import Foundation
import MercatoHooks

/// The parts of a signed command's body the gateway reads (CONTRACT §4: `install_id`,
/// `command`, `args`), decoded once from the raw bytes.
///
/// The body must be a JSON object, read by ``JSONValue/init(parsing:)-(some Collection<UInt8>)``,
/// or it is refused (400 `malformed_json`): every member is read, not only these three, so a
/// value ``JSONValue`` cannot hold (a number beyond `Double`, a lone surrogate) is refused
/// wherever it is, a repeated member's later value included.
struct CommandBody: Sendable, Equatable {
    /// `install_id` when it is a string; any other kind names no install.
    var installID: String?
    /// `command` when it is a string; any other kind names no command.
    var command: String?
    /// `args` as sent: `nil` when absent (``ArgsValidator`` judges the rest).
    var args: JSONValue?

    init(installID: String?, command: String?, args: JSONValue?) {
        self.installID = installID
        self.command = command
        self.args = args
    }

    /// Decodes the raw body; `nil` when it is not a JSON object.
    static func decode(_ bytes: [UInt8]) -> CommandBody? {
        // Of a repeated member the first stays, as the direct reader keeps it.
        guard case .object(let members)? = try? JSONValue(parsing: bytes) else { return nil }
        return CommandBody(installID: members["install_id"]?.stringValue, command: members["command"]?.stringValue, args: members["args"])
    }
}
