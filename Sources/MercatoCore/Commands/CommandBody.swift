import Foundation
import MercatoHooks

/// The parts of a signed command's body the gateway reads (CONTRACT §4: `install_id`,
/// `command`, `args`), decoded once from the raw bytes.
///
/// The body must be a JSON object, or it is refused (400 `malformed_json`) exactly as decoding
/// it into a ``JSONValue`` would: every member is decoded, not only these three, so a value
/// ``JSONValue`` cannot hold (a number beyond `Double`, a lone surrogate) is refused wherever it
/// is.
struct CommandBody: Decodable, Sendable, Equatable {
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

    init(from decoder: any Decoder) throws {
        // A dictionary of all members, as ``JSONValue`` decodes an object (a repeated key keeps
        // its first value, and every value is decoded).
        let members = try decoder.singleValueContainer().decode([String: JSONValue].self)
        self.init(installID: members["install_id"]?.stringValue, command: members["command"]?.stringValue, args: members["args"])
    }

    /// Decodes the raw body; `nil` when it is not a JSON object.
    static func decode(_ bytes: [UInt8]) -> CommandBody? {
        try? JSONDecoder().decode(CommandBody.self, from: Data(bytes))
    }
}
