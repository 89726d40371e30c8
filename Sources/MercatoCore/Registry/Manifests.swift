import Foundation
import MercatoStorage
public import SQLKit
import Synchronization

/// The one way to a stored manifest: `app_versions` rows decoded into ``AppManifest`` and kept
/// by (app id, version). A version's manifest never changes once stored (a change is a new
/// version), so entries need no invalidation; the cache is bounded. Every service that needs a
/// manifest (registry, installs, gateway, delivery, OAuth) shares one instance.
public final class Manifests: Sendable {
    private let entries = Mutex<[String: AppManifest]>([:])
    let capacity: Int

    public init(capacity: Int = 2048) {
        self.capacity = capacity
    }

    /// The manifest of `appID` at `version`: from the cache, or read on `db` and decoded.
    public func manifest(appID: String, version: String, on db: any SQLDatabase) async throws -> AppManifest? {
        let key = appID + "@" + version
        if let found = entries.withLock({ $0[key] }) { return found }
        guard let json = try await AppStore.manifest(appID: appID, version: version, on: db) else { return nil }
        return keep(key, try Self.decode(json))
    }

    /// The manifest of `appID` at `version` whose stored `json` a query already read (a
    /// catalog page): from the cache, or decoded from `json`.
    public func manifest(appID: String, version: String, json: String) throws -> AppManifest {
        let key = appID + "@" + version
        if let found = entries.withLock({ $0[key] }) { return found }
        return keep(key, try Self.decode(json))
    }

    private func keep(_ key: String, _ manifest: AppManifest) -> AppManifest {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = manifest
        }
        return manifest
    }

    /// What `app_versions.manifest` holds for `manifest`.
    static func encode(_ manifest: AppManifest) throws -> String {
        try JSONCoding.text(manifest)
    }

    static func decode(_ json: String) throws -> AppManifest {
        try JSONCoding.value(AppManifest.self, from: json)
    }
}
