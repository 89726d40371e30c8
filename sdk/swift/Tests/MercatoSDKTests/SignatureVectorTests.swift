import Crypto
import Foundation
import MercatoSDK
import Testing

/// `sdk/testvectors/signatures.json`: signatures made by the Standard Webhooks reference library
/// (`v1`) and PyNaCl (`v1a`), and verification cases, shared by every SDK.
enum SignatureVectors {
    struct SignCase: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let scheme: String
        let secret: String?
        let seed: String?
        let publicKey: String?
        let id: String
        let timestamp: String
        let body: String
        let signature: String
        var testDescription: String { name }

        enum CodingKeys: String, CodingKey {
            case name, scheme, secret, seed, id, timestamp, body, signature
            case publicKey = "public_key"
        }
    }

    struct VerifyCase: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let secrets: [String]
        let publicKeys: [String]
        let id: String
        let timestamp: String
        let body: String
        let header: String
        let now: Double
        let tolerance: Double
        let valid: Bool
        let reason: String
        var testDescription: String { name }

        enum CodingKeys: String, CodingKey {
            case name, secrets, id, timestamp, body, header, now, tolerance, valid, reason
            case publicKeys = "public_keys"
        }
    }

    struct File: Decodable, Sendable {
        let sign: [SignCase]
        let verify: [VerifyCase]
    }

    /// `MERCATO_TESTVECTORS` or the file beside this package.
    static let path: String = ProcessInfo.processInfo.environment["MERCATO_TESTVECTORS"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../testvectors/signatures.json")
            .standardizedFileURL.path

    static let file: File? = FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(File.self, from: $0) }
}

@Suite("Shared signature vectors")
struct SignatureVectorTests {
    @Test("the vector file is there and has both kinds of case")
    func vectorsPresent() throws {
        let file = try #require(SignatureVectors.file, "cannot read \(SignatureVectors.path)")
        #expect(file.sign.contains { $0.scheme == "v1" })
        #expect(file.sign.contains { $0.scheme == "v1a" })
        #expect(file.verify.contains { $0.valid })
        #expect(file.verify.contains { !$0.valid })
        #expect(file.sign.allSatisfy { ["v1", "v1a"].contains($0.scheme) })
    }

    @Test("CommandSigner reproduces the reference signature", arguments: SignatureVectors.file?.sign ?? [])
    func sign(_ vector: SignatureVectors.SignCase) throws {
        let timestamp = try #require(Int64(vector.timestamp))
        let body = Data(vector.body.utf8)
        switch vector.scheme {
        case "v1":
            let signer = try CommandSigner(secret: try #require(vector.secret))
            #expect(signer.scheme == "v1")
            #expect(signer.signature(for: body, webhookID: vector.id, timestamp: timestamp) == vector.signature)
        case "v1a":
            let signer = try CommandSigner(ed25519Seed: try #require(vector.seed))
            #expect(signer.scheme == "v1a")
            #expect(signer.publicKey == vector.publicKey)
            let signature = signer.signature(for: body, webhookID: vector.id, timestamp: timestamp)
            #if os(Linux)
            // BoringSSL's Ed25519 is deterministic (RFC 8032), as PyNaCl's is.
            #expect(signature == vector.signature)
            #else
            // CryptoKit's Ed25519 adds randomness; the signature must still verify.
            _ = signature
            #endif
            // Both ours and the reference's verify under the vector's public key.
            let verifier = try WebhookVerifier(publicKeys: [try #require(vector.publicKey)], now: { Date(timeIntervalSince1970: TimeInterval(timestamp)) })
            try verifier.verify(id: vector.id, timestamp: vector.timestamp, signature: signature, body: body)
            try verifier.verify(id: vector.id, timestamp: vector.timestamp, signature: vector.signature, body: body)
        default:
            Issue.record("unknown scheme \(vector.scheme)")
        }
    }

    @Test("WebhookVerifier agrees with the reference", arguments: SignatureVectors.file?.verify ?? [])
    func verify(_ vector: SignatureVectors.VerifyCase) throws {
        let now = vector.now
        let verifier = try WebhookVerifier(secrets: vector.secrets, publicKeys: vector.publicKeys, tolerance: vector.tolerance,
                                           now: { Date(timeIntervalSince1970: now) })
        let body = Data(vector.body.utf8)
        do {
            let verified = try verifier.verify(headers: ["webhook-id": vector.id, "webhook-timestamp": vector.timestamp,
                                                         "webhook-signature": vector.header], body: body)
            #expect(vector.valid, "accepted, but the reference refuses: \(vector.reason)")
            #expect(verified.id == vector.id)
            #expect(verified.body == body)
        } catch let error as WebhookVerificationError {
            #expect(!vector.valid, "refused (\(error)), but the reference accepts: \(vector.reason)")
            #expect(error.reason == Self.expectedReason(vector), "\(vector.reason)")
            for secret in vector.secrets { #expect(!"\(error)".contains(secret.dropFirst(6))) }
        }
    }

    /// The reason this SDK gives for a refused case, from what the vector says.
    static func expectedReason(_ vector: SignatureVectors.VerifyCase) -> WebhookVerificationError.Reason {
        if vector.header.isEmpty { return .missingHeader }
        if Int64(vector.timestamp) == nil { return .malformedHeader }
        if abs(Double(vector.timestamp)! - vector.now) > vector.tolerance { return .timestampOutOfWindow }
        // No entry of the form `version,base64` at all: the header itself is malformed.
        let wellFormed = vector.header.split(separator: " ").contains { entry in
            guard let comma = entry.firstIndex(of: ",") else { return false }
            return Data(base64Encoded: String(entry[entry.index(after: comma)...])) != nil
        }
        return wellFormed ? .noMatchingSignature : .malformedHeader
    }
}
