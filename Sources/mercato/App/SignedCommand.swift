import ArgumentParser
import Foundation
import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoStorage

/// How a command is signed: an HMAC command secret (`v1`) or an Ed25519 key (`v1a`).
struct SignerOptions: ParsableArguments {
    @Option(help: "The app's command secret (whsec_…), shown once when the app was registered; signs v1.")
    var secret: String?

    @Option(name: .customLong("key-file"), help: "A file holding the base64 of a 32-byte Ed25519 seed; signs v1a instead.")
    var keyFile: String?

    func validate() throws {
        guard (secret == nil) != (keyFile == nil) else { throw ValidationError("give exactly one of --secret or --key-file") }
        if let secret, !Self.isSecret(secret) { throw ValidationError("--secret must be whsec_ followed by base64") }
    }

    /// `whsec_` and the base64 of a non-empty key, as the server hands secrets out.
    static func isSecret(_ text: String) -> Bool {
        text.hasPrefix("whsec_") && !(StandardWebhooks.secretKey(text) ?? []).isEmpty
    }

    /// The `webhook-signature` value over `content`.
    func signature(_ content: [UInt8]) throws -> String {
        if let secret {
            guard let entry = StandardWebhooks.sign(content: content, secret: secret) else { throw ValidationError("--secret must be whsec_ followed by base64") }
            return entry
        }
        let path = keyFile ?? ""
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read the key file \(path)") }
        guard let seed = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), seed.count == 32,
              let entry = StandardWebhooks.signEd25519(content: content, seed: Array(seed)) else {
            throw ValidationError("the key file \(path) must hold the base64 of a 32-byte Ed25519 seed")
        }
        return entry
    }
}

/// What a command is: the install, the command's name, its args, and the idempotency key.
struct CommandOptions: ParsableArguments {
    @Option(help: "The install the command acts for (ins_…).")
    var install: String

    @Option(help: "The command's name, e.g. ping, kv.set, install.info.")
    var command: String

    @Option(help: "The command's args as a JSON object.")
    var args: String = "{}"

    @Option(help: "The webhook-id (idempotency key, 1-128 of A-Z a-z 0-9 _ . -); a new one when omitted.")
    var id: String?

    func validate() throws {
        guard case .object = try parsedArgs() else { throw ValidationError("--args must be a JSON object") }
        if let id, !(1 ... 128).contains(id.utf8.count) || !id.utf8.allSatisfy(CommandGateway.isIDByte) {
            throw ValidationError("--id must be 1 to 128 of A-Z a-z 0-9 _ . -")
        }
    }

    func parsedArgs() throws -> JSONValue {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(args.utf8)) else { throw ValidationError("--args is not valid JSON") }
        return value
    }

    /// The body bytes, fixed once: a retry sends these same bytes.
    func body() throws -> [UInt8] {
        let body: JSONValue = .object(["install_id": .string(install), "command": .string(command), "args": try parsedArgs()])
        return Array(try JSONCoding.verbatim.encode(body))
    }

    func webhookID() -> String { id ?? RecordID.make("cli") }
}

/// A signed command, ready to print or send.
struct SignedCommand {
    var id: String
    var timestamp: String
    var signature: String
    var body: [UInt8]

    init(id: String, body: [UInt8], signer: SignerOptions, at date: Date = Date()) throws {
        self.id = id
        self.body = body
        self.timestamp = String(Int(date.timeIntervalSince1970))
        self.signature = try signer.signature(StandardWebhooks.signedContent(id: id, timestamp: timestamp, body: body))
    }

    var headers: [(String, String)] {
        [("webhook-id", id), ("webhook-timestamp", timestamp), ("webhook-signature", signature)]
    }
}
