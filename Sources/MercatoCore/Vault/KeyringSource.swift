public import Foundation
public import MercatoCrypto

/// Where the master keys come from: `MERCATO_MASTER_KEY`, or the key file in the data
/// directory, created with a fresh key (mode 0600) on first start.
public enum KeyringSource: Sendable {
    case environment(String)
    case file(URL)

    public init(settings: Settings) {
        if let key = settings.masterKey { self = .environment(key) } else { self = .file(settings.keyFile) }
    }

    /// Loads the ring, creating the key file when it does not exist yet.
    public func load(createIfMissing: Bool = true) throws -> Keyring {
        switch self {
        case .environment(let value):
            do { return try Keyring(environmentValue: value) } catch {
                throw SettingsError("MERCATO_MASTER_KEY: \(error)")
            }
        case .file(let url):
            if !FileManager.default.fileExists(atPath: url.path) {
                guard createIfMissing else { throw KeyringError.unreadable("no key file at \(url.path)") }
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                let ring = Keyring.generate()
                try ring.write(to: url)
                return ring
            }
            return try Keyring(contentsOf: url)
        }
    }

    /// A vault over this source that re-reads the file when it meets an unknown key version.
    public func makeVault() throws -> Vault {
        let ring = try load()
        switch self {
        case .environment:
            return Vault(keyring: ring)
        case .file(let url):
            return Vault(keyring: ring, reload: { try Keyring(contentsOf: url) })
        }
    }
}
