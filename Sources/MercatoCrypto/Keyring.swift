public import Foundation

/// The versioned master keys. New values are sealed under ``current``; any version still in the
/// ring can open. `mercato keys rotate` adds a version, re-seals, and `mercato keys retire`
/// drops an old one once nothing is sealed under it.
public struct Keyring: Sendable {
    /// Master keys by version.
    public private(set) var keys: [UInt32: SecureBytes]
    /// The version new values are sealed with: the highest one.
    public var current: UInt32 { keys.keys.max() ?? 0 }

    /// The bytes a master key must have.
    public static let keyLength = 32

    /// A ring holding `keys`; every key must be 32 bytes.
    public init(keys: [UInt32: SecureBytes]) throws {
        guard !keys.isEmpty else { throw KeyringError.empty }
        for (version, key) in keys where key.count != Self.keyLength || version == 0 {
            throw KeyringError.badKey(version: version)
        }
        self.keys = keys
    }

    /// A ring with one fresh random key, version 1.
    public static func generate() -> Keyring {
        try! Keyring(keys: [1: SecureBytes.random(count: keyLength)])
    }

    /// This ring plus a fresh random key one version above the current.
    public func addingVersion() -> Keyring {
        var copy = self
        copy.keys[current + 1] = SecureBytes.random(count: Self.keyLength)
        return copy
    }

    /// This ring without `version`; the current version cannot be retired.
    public func removingVersion(_ version: UInt32) throws -> Keyring {
        guard keys[version] != nil else { throw KeyringError.unknownVersion(version) }
        guard version != current else { throw KeyringError.retiringCurrent(version) }
        var copy = self
        copy.keys[version] = nil
        return copy
    }

    // MARK: Text forms

    /// Parses `MERCATO_MASTER_KEY`: one base64 key (version 1), or `version:base64` pairs
    /// separated by commas.
    public init(environmentValue: String) throws {
        var keys: [UInt32: SecureBytes] = [:]
        let parts = environmentValue.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for part in parts where !part.isEmpty {
            let version: UInt32
            let encoded: Substring
            if let colon = part.firstIndex(of: ":") {
                guard let v = UInt32(part[..<colon]), v > 0 else { throw KeyringError.unreadable("a key version must be a positive whole number") }
                version = v
                encoded = part[part.index(after: colon)...]
            } else {
                guard parts.count == 1 else { throw KeyringError.unreadable("several keys need `version:base64` pairs") }
                version = 1
                encoded = Substring(part)
            }
            guard let data = Data(base64Lenient: encoded), data.count == Self.keyLength else {
                throw KeyringError.badKey(version: version)
            }
            guard keys[version] == nil else { throw KeyringError.unreadable("key version \(version) appears twice") }
            keys[version] = SecureBytes(data)
        }
        try self.init(keys: keys)
    }

    /// The `version:base64` form `MERCATO_MASTER_KEY` accepts.
    public var environmentValue: String {
        keys.keys.sorted().map { "\($0):\(Data(keys[$0]!.exportBytes()).base64EncodedString())" }.joined(separator: ",")
    }

    private struct FileForm: Codable {
        var current: UInt32
        var keys: [String: String]
    }

    /// Reads a key file written by ``write(to:)``.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw KeyringError.unreadable("cannot read \(url.path)") }
        guard let form = try? JSONDecoder().decode(FileForm.self, from: data) else {
            throw KeyringError.unreadable("\(url.path) is not a Mercato key file")
        }
        var keys: [UInt32: SecureBytes] = [:]
        for (v, encoded) in form.keys {
            guard let version = UInt32(v) else { throw KeyringError.unreadable("bad key version \(v) in \(url.path)") }
            guard let bytes = Data(base64Lenient: encoded), bytes.count == Self.keyLength else { throw KeyringError.badKey(version: version) }
            keys[version] = SecureBytes(bytes)
        }
        try self.init(keys: keys)
        guard form.current == current else { throw KeyringError.unreadable("\(url.path): current must be the highest version") }
    }

    /// Writes the ring atomically (temporary file, then rename) with mode 0600.
    public func write(to url: URL) throws {
        let form = FileForm(
            current: current,
            keys: Dictionary(uniqueKeysWithValues: keys.map { (String($0.key), Data($0.value.exportBytes()).base64EncodedString()) })
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(form)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: 0 ... .max)).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw KeyringError.unwritable(url.path)
        }
        guard rename(temporary.path, url.path) == 0 else {
            try? FileManager.default.removeItem(at: temporary)
            throw KeyringError.unwritable(url.path)
        }
    }
}

/// Why a keyring could not be read, built or changed. Never carries key bytes.
public enum KeyringError: Error, Equatable, CustomStringConvertible {
    case empty
    case badKey(version: UInt32)
    case unknownVersion(UInt32)
    case retiringCurrent(UInt32)
    case unreadable(String)
    case unwritable(String)

    public var description: String {
        switch self {
        case .empty: "the keyring holds no key"
        case .badKey(let v): "master key version \(v) is not 32 bytes of base64"
        case .unknownVersion(let v): "the keyring has no key version \(v)"
        case .retiringCurrent(let v): "key version \(v) is the current one and cannot be retired"
        case .unreadable(let why): "unreadable keyring: \(why)"
        case .unwritable(let path): "cannot write the key file \(path)"
        }
    }
}
