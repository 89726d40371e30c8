import Foundation
public import MercatoCrypto
public import MercatoStorage
public import SQLKit

/// Secrets at rest: the vault's sealing over the `sealed_values` table. The row's org, owner
/// and purpose are the additional data, so a ciphertext copied to another row does not open.
public struct SecretStore: Sendable {
    public let vault: Vault

    public init(vault: Vault) { self.vault = vault }

    /// Seals `plaintext` for `context` and stores it (replacing an earlier value).
    public func put(_ plaintext: String, for context: SealContext, on db: any SQLDatabase) async throws {
        let sealed = try vault.seal(plaintext, context: context)
        let now = Timestamp.nowMillis()
        try await SealedValueStore.upsert(
            SealedValueRecord(
                id: RecordID.make("sv"), orgId: context.org, ownerId: context.owner, purpose: context.purpose,
                keyVersion: Int(Vault.keyVersion(of: sealed)!), revision: 1,
                ciphertext: Data(sealed).base64EncodedString(), createdAt: now, updatedAt: now
            ),
            on: db
        )
    }

    /// The plaintext stored for `context`, `nil` when nothing is. Throws ``VaultError`` when
    /// the stored value does not open in this context (tampered or moved).
    public func get(_ context: SealContext, on db: any SQLDatabase) async throws -> String? {
        guard let record = try await SealedValueStore.find(owner: context.owner, purpose: context.purpose, on: db) else { return nil }
        return try open(record, expecting: context)
    }

    /// Opens a stored record, checking it belongs to `context`.
    public func open(_ record: SealedValueRecord, expecting context: SealContext) throws -> String {
        guard let bytes = Data(base64Encoded: record.ciphertext) else { throw VaultError.malformed }
        // The context comes from the caller, not from the row: a row whose org column was
        // edited to match still fails, because the ciphertext was bound to the original.
        return try vault.openString(bytes, context: context)
    }

    /// Deletes every secret of `owner`.
    @discardableResult
    public func deleteAll(owner: String, on db: any SQLDatabase) async throws -> Int {
        try await SealedValueStore.deleteAll(owner: owner, on: db)
    }
}
