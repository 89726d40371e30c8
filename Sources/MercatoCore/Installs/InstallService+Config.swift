import Foundation
import MercatoCrypto
import MercatoHooks
import MercatoStorage
import SQLKit

/// An install's config at rest: every value sealed on its own (owner = the install, purpose =
/// `config.{key}`), so a value copied into another install's row, or another field, fails to open.
extension InstallService {
    func readConfig(_ install: InstallRecord, on db: any SQLDatabase) async throws -> [String: JSONValue] {
        guard !install.configKeys.isEmpty else { return [:] }
        // One statement for all of the install's sealed values.
        return try openConfig(install, sealed: try await SealedValueStore.all(owner: install.id, on: db))
    }

    /// The config of `install` from the values sealed for it, each opened with the context of
    /// the field it is read for. The keys in `masking` read as ``ConfigResolver/mask``: their
    /// values are still opened, so one that fails its check (copied from another row) fails
    /// the read, but never parsed nor kept.
    func openConfig(_ install: InstallRecord, sealed records: [SealedValueRecord], masking: Set<String> = []) throws -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        guard !install.configKeys.isEmpty else { return values }
        for key in install.configKeys {
            let context = Self.configContext(install, key)
            guard let record = records.first(where: { $0.purpose == context.purpose }) else { continue }
            let text = try secrets.open(record, expecting: context)
            values[key] = masking.contains(key) ? .string(ConfigResolver.mask) : try JSONCoding.value(JSONValue.self, from: text)
        }
        return values
    }

    /// Seals every changed value, deletes cleared ones; answers the keys that now hold a value.
    func writeConfig(_ install: InstallRecord, values: [String: JSONValue], previous: [String: JSONValue], on db: any SQLDatabase) async throws -> [String] {
        for (key, value) in values where previous[key] != value {
            try await secrets.put(try JSONCoding.text(value), for: Self.configContext(install, key), on: db)
        }
        for key in previous.keys where values[key] == nil {
            try await SealedValueStore.delete(owner: install.id, purpose: Self.configContext(install, key).purpose, on: db)
        }
        return values.keys.sorted()
    }

    static func configContext(_ install: InstallRecord, _ key: String) -> SealContext {
        SealContext(org: install.orgId, owner: install.id, purpose: "config.\(key)")
    }
}
