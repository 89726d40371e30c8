import Foundation
import CSodium

/// Passwords at rest: Argon2id through libsodium's `crypto_pwhash_str` (the encoded string holds
/// the algorithm, its parameters and the salt). Hashing is deliberately slow and memory-hard, so
/// callers run it off the request's executor.
public enum PasswordHash {
    /// Shortest password accepted.
    public static let minimumLength = 10
    /// Longest password accepted (bytes), so a huge body cannot make hashing slower.
    public static let maximumLength = 512

    /// The encoded Argon2id hash of `password` (libsodium's interactive limits: 2 passes over 64 MiB).
    public static func hash(_ password: String) -> String {
        Sodium.ready()
        var out = [CChar](repeating: 0, count: Int(crypto_pwhash_strbytes()))
        let length = UInt64(password.utf8.count)
        let status = password.withCString { chars in
            crypto_pwhash_str_alg(&out, chars, length, UInt64(crypto_pwhash_opslimit_interactive()), crypto_pwhash_memlimit_interactive(),
                                  crypto_pwhash_alg_argon2id13())
        }
        precondition(status == 0, "crypto_pwhash_str_alg ran out of memory")
        return String(decoding: out.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `true` when `password` matches `encoded` (constant time inside libsodium).
    public static func verify(_ password: String, against encoded: String) -> Bool {
        Sodium.ready()
        let length = UInt64(password.utf8.count)
        return password.withCString { chars in crypto_pwhash_str_verify(encoded, chars, length) == 0 }
    }
}

/// Text for browser session cookies, invitation links and CSRF tokens: 256 random bits,
/// stored (where stored at all) as a BLAKE2b digest under a purpose label.
public enum BrowserSecret {
    /// A fresh random text (base64url, 43 characters).
    public static func generate() -> String {
        Data(SecureRandom.bytes(32)).base64URLEncodedString()
    }

    /// The digest of `text` for `purpose` (hex). Different purposes never share a digest.
    public static func digest(_ text: String, purpose: String) -> String {
        Signatures.hex(Digest.blake2b(Array("mercato.\(purpose).v1:\(text)".utf8)))
    }
}
