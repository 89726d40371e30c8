import ArgumentParser
import Foundation
import MercatoCore
import MercatoCrypto

/// `mercato app verify`: checks an event delivery (or a signed command) read on standard input.
struct AppVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a signed HTTP request read on standard input; exit 0 when it verifies, 1 with the reason.",
        discussion: """
            Standard input holds the request as it arrived: an optional request line, the headers
            (`name: value`), an empty line, then the body, byte for byte. Any one signature that
            verifies under one of the --secret values (v1) or the --public-key (v1a) suffices; the
            webhook-timestamp must be within --tolerance seconds of now.

            Example (a delivery your receiver saved to delivery.http):
              mercato app verify --secret whsec_… < delivery.http
              # verified: webhook-id msg_01jd…, 2,117 bytes
            """
    )

    @Option(help: "A secret to verify v1 signatures with (whsec_…); repeat during a rotation.")
    var secret: [String] = []

    @Option(name: .customLong("public-key"), help: "A public key (whpk_…) to verify v1a signatures with.")
    var publicKey: String?

    @Option(help: "How far webhook-timestamp may be from now, in seconds.")
    var tolerance: Int = 300

    func validate() throws {
        guard !secret.isEmpty || publicKey != nil else { throw ValidationError("give --secret (repeatable) or --public-key") }
        for s in secret where !SignerOptions.isSecret(s) { throw ValidationError("--secret must be whsec_ followed by base64") }
        if let publicKey, ManifestValidator.ed25519PublicKey(publicKey) == nil {
            throw ValidationError("--public-key must be whpk_ followed by the base64 of a 32-byte key")
        }
    }

    func run() throws {
        let input = Array(FileHandle.standardInput.readDataToEndOfFile())
        switch Self.check(input, secrets: secret, publicKey: publicKey.flatMap(ManifestValidator.ed25519PublicKey), tolerance: tolerance,
                          now: Int(Date().timeIntervalSince1970)) {
        case .success(let summary):
            print("verified: \(summary)")
        case .failure(let failure):
            print("not verified: \(failure.reason): \(failure.message)")
            throw ExitCode(1)
        }
    }

    struct Failure: Error {
        var reason: String
        var message: String
    }

    /// Splits the request, checks the headers, the window and the signature.
    static func check(_ input: [UInt8], secrets: [String], publicKey: [UInt8]?, tolerance: Int, now: Int) -> Result<String, Failure> {
        let (headers, body) = split(input)
        var values: [String: String] = [:]
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            guard let value = headers[name], !value.isEmpty else { return .failure(Failure(reason: "missing_header", message: "the \(name) header is missing")) }
            values[name] = value
        }
        let stamp = values["webhook-timestamp"]!
        guard stamp.utf8.count <= 15, stamp.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let seconds = Int(stamp) else {
            return .failure(Failure(reason: "invalid_timestamp", message: "webhook-timestamp is not unix seconds"))
        }
        guard abs(seconds - now) <= tolerance else {
            return .failure(Failure(reason: "timestamp_out_of_window", message: "webhook-timestamp is \(seconds - now) s from now (allowed: ±\(tolerance) s)"))
        }
        let content = StandardWebhooks.signedContent(id: values["webhook-id"]!, timestamp: stamp, body: body)
        guard StandardWebhooks.verify(header: values["webhook-signature"]!, content: content, secrets: secrets, publicKey: publicKey) else {
            return .failure(Failure(reason: "invalid_signature", message: "no signature verifies under the given secrets or key (wrong secret, or the body changed)"))
        }
        return .success("webhook-id \(values["webhook-id"]!), \(body.count) bytes")
    }

    /// Headers (lower-cased names) and the body: everything after the first empty line.
    static func split(_ input: [UInt8]) -> (headers: [String: String], body: [UInt8]) {
        var headers: [String: String] = [:]
        var index = 0
        var first = true
        while index < input.count {
            var end = index
            while end < input.count && input[end] != 10 { end += 1 }
            var line = Array(input[index ..< end])
            if line.last == 13 { line.removeLast() }
            index = min(end + 1, input.count)
            if line.isEmpty { return (headers, Array(input[index...])) }
            let text = String(decoding: line, as: UTF8.self)
            defer { first = false }
            if first && text.contains(" HTTP/") { continue }
            guard let colon = text.firstIndex(of: ":") else { continue }
            headers[text[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (headers, [])
    }
}
