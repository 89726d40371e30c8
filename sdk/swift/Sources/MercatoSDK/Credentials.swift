import Foundation

/// Reading the texts Mercato hands out: `whsec_` secrets and `whpk_` public keys.
enum Credentials {
    static let secretPrefix = "whsec_"
    static let publicKeyPrefix = "whpk_"

    /// The key bytes of a `whsec_<base64>` secret (the prefix may be left off).
    static func secretKey(_ secret: String) throws -> [UInt8] {
        let encoded = secret.hasPrefix(secretPrefix) ? String(secret.dropFirst(secretPrefix.count)) : secret
        guard let key = Data(base64Encoded: encoded), !key.isEmpty else {
            throw CredentialError(.malformedSecret)
        }
        return Array(key)
    }

    /// The 32 bytes of a `whpk_<base64>` Ed25519 public key (the prefix may be left off).
    static func publicKey(_ text: String) throws -> [UInt8] {
        let encoded = text.hasPrefix(publicKeyPrefix) ? String(text.dropFirst(publicKeyPrefix.count)) : text
        guard let key = Data(base64Encoded: encoded), key.count == 32 else {
            throw CredentialError(.malformedPublicKey)
        }
        return Array(key)
    }
}

/// A secret, key or seed given to the SDK that cannot be read.
///
/// The text itself is never part of the error or its description.
public struct CredentialError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What could not be read.
    public enum Kind: String, Sendable, Hashable {
        /// Not `whsec_` followed by non-empty base64.
        case malformedSecret = "malformed_secret"
        /// Not `whpk_` followed by the base64 of 32 bytes.
        case malformedPublicKey = "malformed_public_key"
        /// Not the base64 of a 32-byte Ed25519 seed.
        case malformedPrivateKey = "malformed_private_key"
    }

    /// What could not be read.
    public let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    public var description: String {
        switch kind {
        case .malformedSecret: "the secret is not `whsec_` followed by base64"
        case .malformedPublicKey: "the public key is not `whpk_` followed by the base64 of 32 bytes"
        case .malformedPrivateKey: "the Ed25519 private key is not the base64 of a 32-byte seed"
        }
    }
}
