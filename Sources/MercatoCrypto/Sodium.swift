import CSodium
public import Foundation

/// Process-wide libsodium initialisation. Every public entry point of this module calls
/// ``Sodium/ready()`` first; `sodium_init` is idempotent and thread-safe, but calling it once
/// keeps the hot path to a single load.
enum Sodium {
    private static let initialised: Bool = sodium_init() >= 0

    static func ready() {
        precondition(initialised, "libsodium failed to initialise")
    }
}

/// Cryptographic randomness from libsodium (`randombytes_buf`).
public enum SecureRandom {
    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return out
    }
}

/// Constant-time helpers.
public enum ConstantTime {
    /// `true` when both byte strings are equal, in time independent of where they differ
    /// (`sodium_memcmp`). Strings of different lengths compare unequal.
    public static func equals(_ a: some ContiguousBytes, _ b: some ContiguousBytes) -> Bool {
        Sodium.ready()
        return a.withUnsafeBytes { (pa: UnsafeRawBufferPointer) -> Bool in
            b.withUnsafeBytes { (pb: UnsafeRawBufferPointer) -> Bool in
                guard pa.count == pb.count else { return false }
                if pa.count == 0 { return true }
                return sodium_memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0
            }
        }
    }
}

/// Keyed and unkeyed BLAKE2b (`crypto_generichash`).
public enum Digest {
    /// BLAKE2b of `message`, `length` bytes long (16...64), optionally keyed.
    public static func blake2b(_ message: some ContiguousBytes, length: Int = 32, key: SecureBytes? = nil) -> [UInt8] {
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: length)
        message.withUnsafeBytes { m in
            if let key {
                key.withUnsafeBytes { k in
                    _ = crypto_generichash(&out, length, m.bindMemory(to: UInt8.self).baseAddress, UInt64(m.count),
                                           k.bindMemory(to: UInt8.self).baseAddress, k.count)
                }
            } else {
                _ = crypto_generichash(&out, length, m.bindMemory(to: UInt8.self).baseAddress, UInt64(m.count), nil, 0)
            }
        }
        return out
    }
}

extension Digest {
    /// SHA-256 of `message` (`crypto_hash_sha256`), e.g. for a PKCE S256 code challenge.
    public static func sha256(_ message: [UInt8]) -> [UInt8] {
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256(&out, message, UInt64(message.count))
        return out
    }

    /// Lower-case hex of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String { Signatures.hex(bytes) }
}
