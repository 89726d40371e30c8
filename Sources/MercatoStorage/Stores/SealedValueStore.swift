public import SQLKit

/// A value sealed by the vault. The row's own `org_id`, `owner_id` and `purpose` are the
/// additional data it was sealed with, so moving `ciphertext` to another row breaks it.
public struct SealedValueRecord: Sendable, Codable, Equatable {
    public var id: String
    public var orgId: String
    public var ownerId: String
    public var purpose: String
    public var keyVersion: Int
    /// Grows with every write; the re-sealer's compare-and-swap token.
    public var revision: Int
    /// Base64 of the vault's sealed bytes.
    public var ciphertext: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, orgId: String, ownerId: String, purpose: String, keyVersion: Int, revision: Int, ciphertext: String, createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.orgId = orgId
        self.ownerId = ownerId
        self.purpose = purpose
        self.keyVersion = keyVersion
        self.revision = revision
        self.ciphertext = ciphertext
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

extension SealedValueRecord {
    /// Decodes a row of ``SealedValueStore/columns`` by column name (read on hot paths).
    init(row: any SQLRow) throws { try self.init(row: row, prefix: "") }

    /// The same, each column's name after `prefix` (a row that joins another table's columns).
    init(row: any SQLRow, prefix: String) throws {
        self.init(id: try row.decode(column: prefix + "id", as: String.self), orgId: try row.decode(column: prefix + "org_id", as: String.self),
                  ownerId: try row.decode(column: prefix + "owner_id", as: String.self), purpose: try row.decode(column: prefix + "purpose", as: String.self),
                  keyVersion: try row.decode(column: prefix + "key_version", as: Int.self), revision: try row.decode(column: prefix + "revision", as: Int.self),
                  ciphertext: try row.decode(column: prefix + "ciphertext", as: String.self),
                  createdAt: try row.decode(column: prefix + "created_at", as: Int64.self),
                  updatedAt: try row.decode(column: prefix + "updated_at", as: Int64.self))
    }
}

/// Rows of `sealed_values`: every secret Mercato keeps, in one table, so that key rotation
/// re-seals them all with one loop.
public enum SealedValueStore {
    static let columns = "id, org_id, owner_id, purpose, key_version, revision, ciphertext, created_at, updated_at"

    /// Inserts, or replaces the value of the same owner and purpose (the revision grows).
    public static func upsert(_ value: SealedValueRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO sealed_values (\(unsafeRaw: columns))
            VALUES (\(bind: value.id), \(bind: value.orgId), \(bind: value.ownerId), \(bind: value.purpose), \(bind: value.keyVersion),
                    1, \(bind: value.ciphertext), \(bind: value.createdAt), \(bind: value.updatedAt))
            ON CONFLICT (owner_id, purpose) DO UPDATE SET
                ciphertext = excluded.ciphertext, key_version = excluded.key_version,
                revision = sealed_values.revision + 1, updated_at = excluded.updated_at
            """).run()
    }

    public static func find(owner: String, purpose: String, on db: any SQLDatabase) async throws -> SealedValueRecord? {
        try await db.bound("SELECT \(columns) FROM sealed_values WHERE owner_id = ? AND purpose = ?", [owner, purpose])
            .first().map(SealedValueRecord.init(row:))
    }

    public static func all(owner: String, on db: any SQLDatabase) async throws -> [SealedValueRecord] {
        try await db.prepared(OwnerRead.self, [owner]).map(SealedValueRecord.init(row:))
    }

    /// The values of each of `owners` (a page of installs), in one statement per 500 owners.
    public static func all(owners: [String], on db: any SQLDatabase) async throws -> [String: [SealedValueRecord]] {
        var found: [String: [SealedValueRecord]] = [:]
        var start = 0
        while start < owners.count {
            let chunk = Array(owners[start ..< min(start + 500, owners.count)])
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            for row in try await db.bound("SELECT \(columns) FROM sealed_values WHERE owner_id IN (\(marks)) ORDER BY owner_id, purpose", chunk).all() {
                let record = try SealedValueRecord(row: row)
                found[record.ownerId, default: []].append(record)
            }
            start += chunk.count
        }
        return found
    }

    /// ``all(owner:on:)``: an install's config, read with the install.
    enum OwnerRead: PreparedText {
        static let text = "SELECT \(columns) FROM sealed_values WHERE owner_id = ? ORDER BY purpose"
        static let name = "mercato_sealed_values_of_owner"
        static let postgres = numbered(text)
    }

    /// Deletes every value of `owner`; answers how many.
    @discardableResult
    public static func deleteAll(owner: String, on db: any SQLDatabase) async throws -> Int {
        let rows = try await db.raw("DELETE FROM sealed_values WHERE owner_id = \(bind: owner) RETURNING id").all()
        return rows.count
    }

    public static func delete(owner: String, purpose: String, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM sealed_values WHERE owner_id = \(bind: owner) AND purpose = \(bind: purpose)").run()
    }

    /// Up to `limit` values sealed under a version other than `version`, after id `after`.
    public static func notSealedUnder(version: Int, after: String, limit: Int, on db: any SQLDatabase) async throws -> [SealedValueRecord] {
        try await db.raw("""
            SELECT \(unsafeRaw: columns) FROM sealed_values
            WHERE key_version <> \(bind: version) AND id > \(bind: after) ORDER BY id LIMIT \(bind: limit)
            """).all().map(SealedValueRecord.init(row:))
    }

    /// Replaces the ciphertext only if nobody wrote the row since it was read at `revision`.
    public static func reseal(id: String, revision: Int, ciphertext: String, keyVersion: Int, at millis: Int64, on db: any SQLDatabase) async throws -> Bool {
        let rows = try await db.raw("""
            UPDATE sealed_values SET ciphertext = \(bind: ciphertext), key_version = \(bind: keyVersion),
                revision = revision + 1, updated_at = \(bind: millis)
            WHERE id = \(bind: id) AND revision = \(bind: revision) RETURNING id
            """).all()
        return !rows.isEmpty
    }

    /// How many values each key version seals.
    public static func countByKeyVersion(on db: any SQLDatabase) async throws -> [Int: Int] {
        let rows = try await db.raw("SELECT key_version, COUNT(*) AS n FROM sealed_values GROUP BY key_version").all()
        var counts: [Int: Int] = [:]
        for row in rows { counts[try row.decode(column: "key_version", as: Int.self)] = try row.decode(column: "n", as: Int.self) }
        return counts
    }
}
