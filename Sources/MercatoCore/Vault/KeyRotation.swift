import Foundation
public import Logging
public import MercatoCrypto
public import MercatoStorage

/// Re-seals every stored secret under the vault's current key version while the server keeps
/// serving. Each row is swapped only if nobody wrote it since it was read (its revision), so a
/// concurrent write is never overwritten; such rows are picked up by the next pass.
public struct KeyRotation: Sendable {
    public let database: Database
    public let vault: Vault
    public let logger: Logger
    public var batchSize = 200

    public init(database: Database, vault: Vault, logger: Logger) {
        self.database = database
        self.vault = vault
        self.logger = logger
    }

    /// What a re-seal did.
    public struct Report: Sendable, Equatable {
        public var resealed = 0
        /// Rows that do not open under any key the ring holds (tampered or foreign): left as they are.
        public var unopenable: [String] = []
        public var passes = 0
    }

    /// Re-seals until a pass finds nothing left under an old version (or `maxPasses`).
    public func resealAll(maxPasses: Int = 20) async throws -> Report {
        var report = Report()
        while report.passes < maxPasses {
            report.passes += 1
            let target = Int(vault.currentKeyVersion)
            var after = ""
            var touchedThisPass = 0
            var raced = 0
            while true {
                let cursor = after
                let batch = try await database.read { db in
                    try await SealedValueStore.notSealedUnder(version: target, after: cursor, limit: batchSize, on: db)
                }
                guard let last = batch.last else { break }
                after = last.id
                var updates: [(SealedValueRecord, String)] = []
                for record in batch where !report.unopenable.contains(record.id) {
                    let context = SealContext(org: record.orgId, owner: record.ownerId, purpose: record.purpose)
                    do {
                        let plain = try vault.open(Data(base64Encoded: record.ciphertext) ?? Data(), context: context)
                        let sealed = try vault.seal(plain, context: context)
                        updates.append((record, Data(sealed).base64EncodedString()))
                    } catch {
                        logger.error("sealed value does not open; left unchanged", metadata: ["sealed_value": "\(record.id)", "reason": "\(error)"])
                        report.unopenable.append(record.id)
                    }
                }
                let pending = updates
                let swapped = try await database.longTransaction { db -> Int in
                    var n = 0
                    for (record, cipher) in pending {
                        if try await SealedValueStore.reseal(id: record.id, revision: record.revision, ciphertext: cipher, keyVersion: target, at: Timestamp.nowMillis(), on: db) {
                            n += 1
                        }
                    }
                    return n
                }
                report.resealed += swapped
                raced += updates.count - swapped
                touchedThisPass += updates.count
            }
            if touchedThisPass == 0 && raced == 0 { break }
        }
        return report
    }
}
