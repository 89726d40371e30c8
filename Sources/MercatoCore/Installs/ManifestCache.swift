import MercatoStorage
import SQLKit
import Synchronization

/// Parsed manifests by (app id, version). A version's manifest never changes once stored (a
/// change is a new version), so entries need no invalidation; the cache is bounded.
final class ManifestCache: Sendable {
    private let entries = Mutex<[String: AppManifest]>([:])
    let capacity: Int

    init(capacity: Int = 2048) {
        self.capacity = capacity
    }

    /// The manifest of `appID` at `version`: from the cache, or read on `db` and decoded.
    func manifest(appID: String, version: String, on db: any SQLDatabase) async throws -> AppManifest? {
        let key = appID + "@" + version
        if let found = entries.withLock({ $0[key] }) { return found }
        guard let json = try await AppStore.manifest(appID: appID, version: version, on: db) else { return nil }
        let manifest = try RegistryService.decode(json)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = manifest
        }
        return manifest
    }
}
