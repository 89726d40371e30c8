public import Crypto
public import Foundation

/// Signs commands the way `POST /api/v1/apps/commands` checks them (Standard Webhooks):
/// `v1,<base64 HMAC-SHA256>` under the app's command secret, or `v1a,<base64 Ed25519>` under the
/// private key whose public key the manifest registered, over `{webhook-id}.{webhook-timestamp}.{body}`.
///
/// ```swift
/// let signer = try CommandSigner(secret: "whsec_...")
/// let headers = signer.headers(for: body, webhookID: "msg_1")
/// ```
public struct CommandSigner: Sendable {
    // Raw bytes, not swift-crypto's key types, which are not `Sendable` in swift-crypto 3.
    private enum Key: Sendable {
        case hmac([UInt8])
        case ed25519(seed: Data)
    }

    private let key: Key
    private let now: @Sendable () -> Date

    /// A signer with the app's HMAC command secret (`whsec_` + base64, as `POST /developer/apps`
    /// or a rotation answered it).
    /// - Parameter now: the clock for `webhook-timestamp`; the system clock unless a test sets one.
    /// - Throws: ``CredentialError`` when the secret is not `whsec_` + base64.
    public init(secret: String, now: @escaping @Sendable () -> Date = { Date() }) throws {
        key = .hmac(try Credentials.secretKey(secret))
        self.now = now
    }

    /// A signer with an Ed25519 private key (the app registered its public key as
    /// `command_signing: {"type": "ed25519", "public_key": "whpk_..."}`).
    public init(privateKey: Curve25519.Signing.PrivateKey, now: @escaping @Sendable () -> Date = { Date() }) {
        key = .ed25519(seed: privateKey.rawRepresentation)
        self.now = now
    }

    /// A signer with an Ed25519 private key given as the base64 of its 32-byte seed.
    /// - Throws: ``CredentialError`` when it is not the base64 of 32 bytes.
    public init(ed25519Seed seed: String, now: @escaping @Sendable () -> Date = { Date() }) throws {
        guard let bytes = Data(base64Encoded: seed), bytes.count == 32,
              let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes)
        else { throw CredentialError(.malformedPrivateKey) }
        self.init(privateKey: privateKey, now: now)
    }

    /// The scheme's tag in `webhook-signature`: `v1` (HMAC) or `v1a` (Ed25519).
    public var scheme: String {
        switch key {
        case .hmac: "v1"
        case .ed25519: "v1a"
        }
    }

    /// For an Ed25519 signer, the `whpk_...` text to put in the manifest; `nil` for HMAC.
    public var publicKey: String? {
        guard case .ed25519(let seed) = key, let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            return nil
        }
        return Credentials.publicKeyPrefix + privateKey.publicKey.rawRepresentation.base64EncodedString()
    }

    /// The `webhook-signature` value (`v1,...` or `v1a,...`) for `body` sent as `webhookID` at `timestamp`.
    public func signature(for body: some DataProtocol, webhookID: String, timestamp: Int64) -> String {
        var content = Data("\(webhookID).\(timestamp).".utf8)
        content.append(contentsOf: body)
        switch key {
        case .hmac(let secret):
            let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: secret))
            return "v1," + Data(mac).base64EncodedString()
        case .ed25519(let seed):
            // The seed was checked when the signer was made, so neither step can fail here.
            let signature = (try? Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: content)) ?? Data()
            return "v1a," + signature.base64EncodedString()
        }
    }

    /// The three headers for `body`: `webhook-id` (a new random id unless one is given),
    /// `webhook-timestamp` (now, in Unix seconds) and `webhook-signature`.
    public func headers(for body: some DataProtocol, webhookID: String? = nil) -> SignedHeaders {
        let id = webhookID ?? Self.newWebhookID()
        let timestamp = Int64(now().timeIntervalSince1970.rounded(.down))
        return SignedHeaders(webhookID: id, timestamp: timestamp, signature: signature(for: body, webhookID: id, timestamp: timestamp))
    }

    /// A fresh `webhook-id`: `msg_` and 32 random hex digits (the contract allows 1-128 of
    /// `[A-Za-z0-9_.-]`).
    public static func newWebhookID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<2).map { _ in
            let text = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }
        return "msg_" + hex.joined()
    }

    /// `true` when `id` is 1-128 characters of `[A-Za-z0-9_.-]`, as the server requires.
    public static func isValidWebhookID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }
}

/// The signature headers of one request.
public struct SignedHeaders: Sendable, Hashable {
    /// `webhook-id`: the idempotency key; a resend of the same body keeps it.
    public var webhookID: String
    /// `webhook-timestamp`: Unix seconds.
    public var timestamp: Int64
    /// `webhook-signature`: `v1,<base64>` or `v1a,<base64>`.
    public var signature: String

    /// Headers as they were sent or received.
    public init(webhookID: String, timestamp: Int64, signature: String) {
        self.webhookID = webhookID
        self.timestamp = timestamp
        self.signature = signature
    }

    /// The headers by their names, ready for a request.
    public var dictionary: [String: String] {
        ["webhook-id": webhookID, "webhook-timestamp": String(timestamp), "webhook-signature": signature]
    }
}
