import CSodium
public import Foundation
import Synchronization

/// What a sealed value belongs to. It is bound into the additional data, so a ciphertext copied
/// to another org, record or purpose fails to open.
public struct SealContext: Sendable, Hashable, CustomStringConvertible {
    /// The org whose key seals it (`org_...`, or ``SealContext/platformOrg`` for operator-owned values).
    public var org: String
    /// The record that owns the value (`ins_...`, `app_...`, `con_...`).
    public var owner: String
    /// What the value is for (`config.api_key`, `webhook_secret`, ...).
    public var purpose: String

    /// The pseudo-org for values the operator owns (OAuth client secrets).
    public static let platformOrg = "platform"

    public init(org: String, owner: String, purpose: String) {
        self.org = org
        self.owner = owner
        self.purpose = purpose
    }

    public var description: String { "\(org)/\(owner)/\(purpose)" }
}

/// Why a value did not seal or open. Fails closed; never carries plaintext or key bytes.
public struct VaultError: Error, Equatable, CustomStringConvertible {
    private enum Internal: Equatable {
        case malformed
        case unknownKeyVersion(UInt32)
        case authenticationFailed
    }
    private let value: Internal

    /// The bytes are not a Mercato sealed value.
    public static var malformed: Self { .init(value: .malformed) }
    /// Sealed under a key version the ring no longer (or not yet) has.
    public static func unknownKeyVersion(_ v: UInt32) -> Self { .init(value: .unknownKeyVersion(v)) }
    /// Tampered, or opened in the wrong context (org, owner, purpose) or with the wrong key.
    public static var authenticationFailed: Self { .init(value: .authenticationFailed) }

    public var description: String {
        switch value {
        case .malformed: "sealed value is malformed"
        case .unknownKeyVersion(let v): "sealed value uses master key version \(v), which the keyring does not hold"
        case .authenticationFailed: "sealed value failed authentication (tampered, or moved to another record)"
        }
    }
}

/// Seals and opens secrets with XChaCha20-Poly1305-IETF under per-org keys derived from the
/// versioned master key.
///
/// Layout of a sealed value: `"M" 0x01`, the key version (4 bytes, big-endian), a 24-byte random
/// nonce, then the ciphertext and its 16-byte tag. The additional data is the format tag, the
/// key version and the length-prefixed ``SealContext`` fields, so none of them can be altered or
/// the value moved without opening failing.
public final class Vault: Sendable {
    private let ring: Mutex<Keyring>
    private let reloader: (@Sendable () throws -> Keyring)?

    static let magic: [UInt8] = [0x4D, 0x01]
    static let headerLength = 2 + 4 + Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    static let tagLength = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    private static let kdfContext = Array("mrcvault".utf8).map { CChar(bitPattern: $0) }

    /// A vault over `keyring`. `reload`, when given, is asked for a fresh ring when a value names
    /// a key version this process has not seen (another process rotated) and by ``reload()``.
    public init(keyring: Keyring, reload: (@Sendable () throws -> Keyring)? = nil) {
        Sodium.ready()
        self.ring = Mutex(keyring)
        self.reloader = reload
    }

    /// The version new values are sealed under.
    public var currentKeyVersion: UInt32 { ring.withLock { $0.current } }

    /// The versions this vault can open.
    public var keyVersions: [UInt32] { ring.withLock { $0.keys.keys.sorted() } }

    /// Re-reads the keyring from its source, keeping the old one if the source fails.
    @discardableResult
    public func reload() throws -> Bool {
        guard let reloader else { return false }
        let fresh = try reloader()
        return ring.withLock { ring in
            let changed = Set(ring.keys.keys) != Set(fresh.keys.keys)
            ring = fresh
            return changed
        }
    }

    /// Seals `plaintext` for `context` under the current key version.
    public func seal(_ plaintext: some ContiguousBytes, context: SealContext) throws -> [UInt8] {
        let (version, master) = ring.withLock { ($0.current, $0.keys[$0.current]!) }
        return seal(plaintext, context: context, version: version, master: master)
    }

    /// Seals UTF-8 text.
    public func seal(_ text: String, context: SealContext) throws -> [UInt8] {
        try seal(Array(text.utf8), context: context)
    }

    /// Opens a value sealed for `context`.
    public func open(_ sealed: some ContiguousBytes, context: SealContext) throws(VaultError) -> [UInt8] {
        let bytes = sealed.withUnsafeBytes { Array($0) }
        guard bytes.count >= Self.headerLength + Self.tagLength, Array(bytes[0 ..< 2]) == Self.magic else {
            throw .malformed
        }
        let version = UInt32(bytes[2]) << 24 | UInt32(bytes[3]) << 16 | UInt32(bytes[4]) << 8 | UInt32(bytes[5])
        guard let master = try key(version: version) else { throw .unknownKeyVersion(version) }
        let nonce = bytes[6 ..< Self.headerLength]
        let cipher = bytes[Self.headerLength...]
        let ad = Self.additionalData(version: version, context: context)
        var plain = [UInt8](repeating: 0, count: cipher.count - Self.tagLength)
        var plainLength: UInt64 = 0
        let status = withOrgKey(master: master, org: context.org) { key in
            cipher.withUnsafeBufferPointer { c in
                nonce.withUnsafeBufferPointer { n in
                    crypto_aead_xchacha20poly1305_ietf_decrypt(
                        &plain, &plainLength, nil,
                        c.baseAddress!, UInt64(c.count),
                        ad, UInt64(ad.count),
                        n.baseAddress!, key
                    )
                }
            }
        }
        guard status == 0 else { throw .authenticationFailed }
        return plain
    }

    /// Opens a value sealed from UTF-8 text.
    public func openString(_ sealed: some ContiguousBytes, context: SealContext) throws -> String {
        let bytes = try open(sealed, context: context)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw VaultError.malformed }
        return text
    }

    /// The key version a sealed value names, or `nil` if it is not a sealed value.
    public static func keyVersion(of sealed: some ContiguousBytes) -> UInt32? {
        sealed.withUnsafeBytes { b in
            guard b.count >= headerLength + tagLength, b[0] == magic[0], b[1] == magic[1] else { return nil }
            return UInt32(b[2]) << 24 | UInt32(b[3]) << 16 | UInt32(b[4]) << 8 | UInt32(b[5])
        }
    }

    // MARK: Internals

    private func key(version: UInt32) throws(VaultError) -> SecureBytes? {
        if let key = ring.withLock({ $0.keys[version] }) { return key }
        // Another process may have rotated: look once more at the source.
        guard (try? reload()) != nil else { return nil }
        return ring.withLock { $0.keys[version] }
    }

    private func seal(_ plaintext: some ContiguousBytes, context: SealContext, version: UInt32, master: SecureBytes) -> [UInt8] {
        let ad = Self.additionalData(version: version, context: context)
        let plain = plaintext.withUnsafeBytes { Array($0) }
        var out = Self.magic
        out += [UInt8(version >> 24 & 0xFF), UInt8(version >> 16 & 0xFF), UInt8(version >> 8 & 0xFF), UInt8(version & 0xFF)]
        let nonce = SecureRandom.bytes(Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
        out += nonce
        var cipher = [UInt8](repeating: 0, count: plain.count + Self.tagLength)
        var cipherLength: UInt64 = 0
        _ = withOrgKey(master: master, org: context.org) { key in
            crypto_aead_xchacha20poly1305_ietf_encrypt(
                &cipher, &cipherLength,
                plain, UInt64(plain.count),
                ad, UInt64(ad.count),
                nil, nonce, key
            )
        }
        out += cipher
        return out
    }

    /// Derives the org's key from a master key with `crypto_kdf_derive_from_key` into a
    /// stack buffer that is wiped afterwards. The subkey id is a 64-bit BLAKE2b digest of the
    /// org id; the org id is also in the additional data, so even a digest collision cannot open
    /// another org's value.
    private func withOrgKey<R>(master: SecureBytes, org: String, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        let digest = Digest.blake2b(Array(org.utf8), length: 16)
        var subkeyID: UInt64 = 0
        for i in 0 ..< 8 { subkeyID |= UInt64(digest[i]) << (8 * UInt64(i)) }
        var key = [UInt8](repeating: 0, count: Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES))
        defer { sodium_memzero(&key, key.count) }
        master.withUnsafeBytes { m in
            _ = crypto_kdf_derive_from_key(&key, key.count, subkeyID, Self.kdfContext, m.bindMemory(to: UInt8.self).baseAddress!)
        }
        return key.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// The bytes a sealed value is bound to: a label, the format, the key version and the
    /// context's three fields, each after its length (big-endian), in one allocation.
    static func additionalData(version: UInt32, context: SealContext) -> [UInt8] {
        let label = "mercato.vault".utf8
        var ad: [UInt8] = []
        ad.reserveCapacity(label.count + magic.count + 16 + context.org.utf8.count + context.owner.utf8.count + context.purpose.utf8.count)
        func appendLength(_ n: UInt32) {
            ad.append(UInt8(n >> 24 & 0xFF)); ad.append(UInt8(n >> 16 & 0xFF)); ad.append(UInt8(n >> 8 & 0xFF)); ad.append(UInt8(n & 0xFF))
        }
        ad.append(contentsOf: label)
        ad.append(contentsOf: magic)
        appendLength(version)
        func appendField(_ field: String) {
            appendLength(UInt32(field.utf8.count))
            ad.append(contentsOf: field.utf8)
        }
        appendField(context.org)
        appendField(context.owner)
        appendField(context.purpose)
        return ad
    }
}
