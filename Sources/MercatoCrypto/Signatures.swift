import CSodium
import Foundation

/// The primitives of Standard Webhooks signatures, through libsodium.
public enum Signatures {
    /// HMAC-SHA256 of `message` under `key` (`crypto_auth_hmacsha256`, any key length).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        hmacSHA256(key: key, prefix: [], message: message)
    }

    /// HMAC-SHA256 of `prefix` followed by `message`, without joining them first (a signed
    /// body can be a megabyte).
    public static func hmacSHA256(key: [UInt8], prefix: [UInt8], message: [UInt8]) -> [UInt8] {
        Sodium.ready()
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        crypto_auth_hmacsha256_init(&state, key, key.count)
        if !prefix.isEmpty { crypto_auth_hmacsha256_update(&state, prefix, UInt64(prefix.count)) }
        crypto_auth_hmacsha256_update(&state, message, UInt64(message.count))
        crypto_auth_hmacsha256_final(&state, &out)
        return out
    }

    /// `true` when `signature` (64 bytes) is `publicKey`'s Ed25519 signature of `message`.
    public static func verifyEd25519(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        Sodium.ready()
        guard signature.count == Int(crypto_sign_BYTES), publicKey.count == Int(crypto_sign_PUBLICKEYBYTES) else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }

    /// `message`'s Ed25519 signature (64 bytes) under the key pair made from `seed` (32 bytes),
    /// and that pair's public key; `nil` for a seed of another length.
    public static func signEd25519(message: [UInt8], seed: [UInt8]) -> (signature: [UInt8], publicKey: [UInt8])? {
        Sodium.ready()
        guard seed.count == Int(crypto_sign_SEEDBYTES) else { return nil }
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        defer { sodium_memzero(&secretKey, secretKey.count) }
        guard crypto_sign_seed_keypair(&publicKey, &secretKey, seed) == 0 else { return nil }
        var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        guard crypto_sign_detached(&signature, nil, message, UInt64(message.count), secretKey) == 0 else { return nil }
        return (signature, publicKey)
    }

    /// SHA-256 of `data`, lower-case hex.
    public static func sha256Hex(_ data: [UInt8]) -> String {
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256(&out, data, UInt64(data.count))
        return hex(out)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case hex of `bytes`, through a table (no formatter per byte).
    public static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            var i = 0
            for byte in bytes {
                buffer[i] = hexDigits[Int(byte >> 4)]
                buffer[i + 1] = hexDigits[Int(byte & 0x0F)]
                i += 2
            }
            return i
        }
    }
}

/// Verifies a Standard Webhooks `webhook-signature` header: space-separated `v1,<base64>`
/// (HMAC-SHA256 under a `whsec_` secret) and `v1a,<base64>` (Ed25519) entries over
/// `{webhook-id}.{webhook-timestamp}.{body}`; any one valid entry suffices.
public struct StandardWebhooks: Sendable {
    /// Key bytes of a `whsec_...` secret.
    public static func secretKey(_ secret: String) -> [UInt8]? {
        Base64.decode(secret.hasPrefix("whsec_") ? secret.dropFirst(6) : secret[...])
    }

    /// The content both schemes sign.
    public static func signedContent(id: String, timestamp: String, body: [UInt8]) -> [UInt8] {
        Array("\(id).\(timestamp).".utf8) + body
    }

    /// The `v1,<base64>` entry for `content` under `secret`, as a sender writes it.
    public static func sign(content: [UInt8], secret: String) -> String? {
        guard let key = secretKey(secret) else { return nil }
        return "v1," + Data(Signatures.hmacSHA256(key: key, message: content)).base64EncodedString()
    }

    /// The `v1a,<base64>` entry for `content` under the Ed25519 key made from `seed` (32 bytes).
    public static func signEd25519(content: [UInt8], seed: [UInt8]) -> String? {
        Signatures.signEd25519(message: content, seed: seed).map { "v1a," + Data($0.signature).base64EncodedString() }
    }

    /// `true` when some `v1` entry matches one of `secrets` or some `v1a` entry verifies
    /// under `publicKey`. Comparisons are constant-time.
    public static func verify(header: String, content: [UInt8], secrets: [String], publicKey: [UInt8]?) -> Bool {
        verify(header: header, content: content, keys: secrets.compactMap(secretKey), publicKey: publicKey)
    }

    /// As ``verify(header:content:secrets:publicKey:)``, with the secrets' key bytes already decoded.
    public static func verify(header: String, content: [UInt8], keys: [[UInt8]], publicKey: [UInt8]?) -> Bool {
        let expected = keys.map { Signatures.hmacSHA256(key: $0, message: content) }
        // Split as bytes: the header is ASCII, and a split by `Character` walks grapheme clusters.
        for entry in header.utf8.split(separator: UInt8(ascii: " ")).prefix(16) {
            guard let comma = entry.firstIndex(of: UInt8(ascii: ",")) else { continue }
            let version = entry[..<comma]
            guard let signature = Base64.decode(Substring(entry[entry.index(after: comma)...])) else { continue }
            if version.elementsEqual("v1".utf8) {
                for mac in expected where ConstantTime.equals(mac, signature) { return true }
            } else if version.elementsEqual("v1a".utf8) {
                if let publicKey, Signatures.verifyEd25519(signature: signature, message: content, publicKey: publicKey) { return true }
            }
        }
        return false
    }
}
