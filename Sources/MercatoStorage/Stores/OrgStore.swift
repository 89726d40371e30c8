public import SQLKit

/// An organisation: the tenant.
public struct OrgRecord: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var plan: String
    public var createdAt: Int64

    public init(id: String, name: String, plan: String, createdAt: Int64) {
        self.id = id
        self.name = name
        self.plan = plan
        self.createdAt = createdAt
    }
}

/// Rows of `orgs`.
public enum OrgStore {
    public static func insert(_ org: OrgRecord, on db: any SQLDatabase) async throws {
        try await db.raw("INSERT INTO orgs (id, name, plan, created_at) VALUES (\(bind: org.id), \(bind: org.name), \(bind: org.plan), \(bind: org.createdAt))").run()
    }

    public static func find(id: String, on db: any SQLDatabase) async throws -> OrgRecord? {
        try await db.raw("SELECT id, name, plan, created_at FROM orgs WHERE id = \(bind: id)")
            .first(decoding: OrgRecord.self, keyDecodingStrategy: .convertFromSnakeCase)
    }
}
