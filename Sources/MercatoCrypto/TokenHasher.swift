import Foundation

/// API tokens: high-entropy random text shown once, stored only as a digest.
///
/// Tokens carry 256 random bits, so a fast digest (BLAKE2b-256) is the right store; Argon2id is
/// for low-entropy passwords. The `mct_` prefix lets secret scanners recognise a leaked token.
public enum APITokenText {
    /// The prefix of every token text.
    public static let prefix = "mct_"

    /// A fresh token text.
    public static func generate() -> String {
        prefix + Data(SecureRandom.bytes(32)).base64URLEncodedString()
    }

    /// The stored digest of a token text (hex).
    public static func digest(_ token: String) -> String {
        Signatures.hex(Digest.blake2b(Array("mercato.api-token.v1:\(token)".utf8)))
    }
}
