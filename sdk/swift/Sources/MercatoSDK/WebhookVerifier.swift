import Crypto
public import Foundation

/// Verifies the event webhooks Mercato delivers to an app's `webhook_url` (Standard Webhooks:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature` over `{id}.{timestamp}.{raw body}`).
///
/// Give it every secret that may sign: during a rotation Mercato signs with the old and the new
/// secret, and either one verifies. Verify the raw body bytes as they arrived, before any JSON
/// parsing, and dedupe on ``VerifiedWebhook/id`` (deliveries are at least once).
///
/// ```swift
/// let verifier = try WebhookVerifier(secrets: ["whsec_..."])
/// let webhook = try verifier.verify(headers: request.headers, body: rawBody)
/// let event = try webhook.event()
/// ```
public struct WebhookVerifier: Sendable {
    /// The window the contract gives a timestamp on either side of now: 300 s.
    public static let defaultTolerance: TimeInterval = 300

    /// At most this many entries of `webhook-signature` are looked at (each costs a MAC per secret).
    static let maxSignatureEntries = 32

    // Raw bytes: swift-crypto 3's key types are not `Sendable`.
    private let hmacKeys: [[UInt8]]
    private let publicKeys: [Data]
    private let tolerance: TimeInterval
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - secrets: `whsec_` secrets (`v1` entries), e.g. the app's webhook secret, and the new one during a rotation.
    ///   - publicKeys: `whpk_` Ed25519 public keys (`v1a` entries).
    ///   - tolerance: how far the timestamp may be from now, either way.
    ///   - now: the clock; the system clock unless a test sets one.
    /// - Throws: ``CredentialError`` for a secret or key that cannot be read (the text is not in the error).
    public init(secrets: [String] = [], publicKeys: [String] = [], tolerance: TimeInterval = defaultTolerance,
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        hmacKeys = try secrets.map(Credentials.secretKey)
        self.publicKeys = try publicKeys.map { text in
            let bytes = Data(try Credentials.publicKey(text))
            guard (try? Curve25519.Signing.PublicKey(rawRepresentation: bytes)) != nil else { throw CredentialError(.malformedPublicKey) }
            return bytes
        }
        self.tolerance = tolerance
        self.now = now
    }

    /// Verifies a request given its headers (names in any case) and its raw body.
    /// - Returns: the verified id and timestamp, and the body.
    /// - Throws: ``WebhookVerificationError`` saying why it is not authentic.
    @discardableResult
    public func verify(headers: [String: String], body: some DataProtocol) throws -> VerifiedWebhook {
        func header(_ name: String) -> String? {
            headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
        return try verify(id: header("webhook-id"), timestamp: header("webhook-timestamp"),
                          signature: header("webhook-signature"), body: body)
    }

    /// Verifies a request given the three header values (`nil` when absent) and its raw body.
    /// - Throws: ``WebhookVerificationError`` saying why it is not authentic.
    @discardableResult
    public func verify(id: String?, timestamp: String?, signature: String?, body: some DataProtocol) throws -> VerifiedWebhook {
        guard let id, !id.isEmpty else { throw WebhookVerificationError(.missingHeader, header: "webhook-id") }
        guard let timestamp, !timestamp.isEmpty else { throw WebhookVerificationError(.missingHeader, header: "webhook-timestamp") }
        guard let signature, !signature.isEmpty else { throw WebhookVerificationError(.missingHeader, header: "webhook-signature") }
        guard timestamp.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let seconds = Int64(timestamp) else {
            throw WebhookVerificationError(.malformedHeader, header: "webhook-timestamp")
        }
        let sent = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard abs(sent.timeIntervalSince(now())) <= tolerance else {
            throw WebhookVerificationError(.timestampOutOfWindow, header: "webhook-timestamp")
        }

        var content = Data("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        // Each secret's MAC is computed once and compared to every `v1` entry in constant time.
        let expected = hmacKeys.map { Data(HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: $0))) }
        let verifyingKeys = publicKeys.compactMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
        var wellFormed = 0
        for entry in signature.split(separator: " ", omittingEmptySubsequences: true).prefix(Self.maxSignatureEntries) {
            guard let comma = entry.firstIndex(of: ","),
                  let bytes = Data(base64Encoded: String(entry[entry.index(after: comma)...]))
            else { continue }
            wellFormed += 1
            switch entry[..<comma] {
            case "v1":
                var matched = false
                for mac in expected { matched = ConstantTime.equal(mac, bytes) || matched }
                if matched { return VerifiedWebhook(id: id, timestamp: sent, body: Data(body)) }
            case "v1a":
                for key in verifyingKeys where key.isValidSignature(bytes, for: content) {
                    return VerifiedWebhook(id: id, timestamp: sent, body: Data(body))
                }
            default:
                continue
            }
        }
        if wellFormed == 0 { throw WebhookVerificationError(.malformedHeader, header: "webhook-signature") }
        throw WebhookVerificationError(.noMatchingSignature, header: "webhook-signature")
    }
}

/// Equality of byte strings whose time does not depend on where they differ.
enum ConstantTime {
    static func equal(_ a: Data, _ b: Data) -> Bool {
        // The length of a MAC is public; only the contents must not leak through timing.
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}

/// A webhook whose signature and timestamp checked out.
public struct VerifiedWebhook: Sendable, Hashable {
    /// `webhook-id`: stable across retries of one delivery, so the key to dedupe on.
    public let id: String
    /// `webhook-timestamp`: when this attempt was signed.
    public let timestamp: Date
    /// The raw body that was verified.
    public let body: Data

    /// The body as an event: `{"type", "timestamp", "data"}`.
    /// - Throws: a `DecodingError` when the body is not such an object.
    public func event() throws -> WebhookEvent {
        try JSONDecoder().decode(WebhookEvent.self, from: body)
    }
}

/// An event Mercato delivers: `app.installed`, `install.config_updated`, `task.created`, ...
public struct WebhookEvent: Sendable, Hashable, Decodable {
    /// The event type, e.g. `app.installed`.
    public let type: String
    /// When it happened (RFC 3339 UTC text, as sent).
    public let timestamp: String
    /// The payload; never holds secrets or tokens.
    public let data: JSONValue
}

/// Why a webhook was not accepted. Its description names the header, never a secret.
public struct WebhookVerificationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The reasons, stable strings in ``rawValue``.
    public enum Reason: String, Sendable, Hashable {
        /// A `webhook-*` header is absent or empty.
        case missingHeader = "missing_header"
        /// `webhook-timestamp` is not Unix seconds, or `webhook-signature` has no `version,base64` entry.
        case malformedHeader = "malformed_header"
        /// `webhook-timestamp` is further than the tolerance from now (too old or too new).
        case timestampOutOfWindow = "timestamp_out_of_window"
        /// No entry of `webhook-signature` verifies under any secret or public key.
        case noMatchingSignature = "no_matching_signature"
    }

    /// Why it was refused.
    public let reason: Reason
    /// The header at fault: `webhook-id`, `webhook-timestamp` or `webhook-signature`.
    public let header: String

    init(_ reason: Reason, header: String) {
        self.reason = reason
        self.header = header
    }

    public var description: String {
        switch reason {
        case .missingHeader: "webhook verification failed: \(header) is missing"
        case .malformedHeader: "webhook verification failed: \(header) is malformed"
        case .timestampOutOfWindow: "webhook verification failed: \(header) is outside the tolerated window"
        case .noMatchingSignature: "webhook verification failed: no signature in \(header) matches"
        }
    }
}
