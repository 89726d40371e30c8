import Foundation
import HTTPTypes
import MercatoCore
import MercatoStorage
import SQLKit
import MercatoTestSupport
import Testing

/// API tokens (CONTRACT §9): scopes, expiry, hourly limit, list, revoke.
@Suite("Scoped API tokens")
struct TokenTests {
    @Test(arguments: TestEngines.all)
    func createWithScopesExpiryAndLimitThenListAndRevoke(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg(plan: "pro")
            let expiry = "2099-01-31T00:00:00Z"
            let created = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner,
                                             json: ["name": "reader", "role": "admin", "scopes": ["installs:read"], "expires_at": expiry, "hourly_limit": 1000])
            #expect(created.status == .created, "\(created.text)")
            #expect(created.json["scopes"] as? [String] == ["installs:read"])
            #expect(created.json["hourly_limit"] as? Int == 1000)
            #expect((created.json["expires_at"] as? String)?.hasPrefix("2099-01-31T00:00:00") == true)
            let text = try #require(created.json["token"] as? String)
            let id = try #require(created.json["id"] as? String)

            // Defaults: every scope the role grants, the plan's hourly limit, no expiry.
            let plain = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": "dev", "role": "developer"])
            #expect(plain.json["scopes"] as? [String] == ["apps:read", "apps:write", "installs:read", "docs:read"])
            #expect(plain.json["hourly_limit"] as? Int == 10_000)

            // The token works; the list shows it (never its text) with its last use.
            #expect(try await app.call(.get, "/api/v1/installs", token: text).status == .ok)
            let list = try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: owner)
            #expect(list.status == .ok)
            #expect(!list.text.contains(text))
            let rows = try #require(list.json["data"] as? [[String: Any]])
            let row = try #require(rows.first { $0["id"] as? String == id })
            #expect(row["name"] as? String == "reader")
            #expect(row["role"] as? String == "admin")
            #expect(row["scopes"] as? [String] == ["installs:read"])
            #expect((row["expires_at"] as? String)?.hasPrefix("2099-01-31T00:00:00") == true)
            #expect(row["hourly_limit"] as? Int == 1000)
            #expect(row["created_at"] is String)
            #expect(row.keys.contains("last_used_at"))
            #expect(row["token"] == nil && row["token_hash"] == nil)

            // Revoked: the next request is 401.
            #expect(try await app.call(.delete, "/api/v1/orgs/\(org)/tokens/\(id)", token: owner).status == .noContent)
            expectProblem(try await app.call(.get, "/api/v1/installs", token: text), .unauthorized, "unauthenticated")
        }
    }

    @Test(arguments: TestEngines.all)
    func badScopesExpiryAndLimitsAre422NamingThem(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            func refused(_ extra: [String: Any], role: String = "admin", field: String, mentions: String) async throws {
                var body: [String: Any] = ["name": "t", "role": role]
                body.merge(extra) { $1 }
                let answer = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: body)
                expectProblem(answer, .unprocessableContent, "invalid_request")
                #expect((answer.json["errors"] as? [[String: String]])?.first?["field"] == field, "\(answer.text)")
                #expect(answer.text.contains(mentions), "\(answer.text)")
            }
            try await refused(["scopes": ["installs:read", "installs:destroy"]], field: "scopes", mentions: "installs:destroy")
            try await refused(["scopes": ["tokens:write"]], field: "scopes", mentions: "tokens:write")
            try await refused(["scopes": ["apps:write"]], role: "member", field: "scopes", mentions: "apps:write")
            try await refused(["scopes": []], field: "scopes", mentions: "at least one")
            try await refused(["expires_at": "2001-01-01T00:00:00Z"], field: "expires_at", mentions: "future")
            try await refused(["expires_at": "tomorrow"], field: "expires_at", mentions: "RFC 3339")
            try await refused(["hourly_limit": 0], field: "hourly_limit", mentions: "1 to 1000000")
            try await refused(["hourly_limit": 1_000_001], field: "hourly_limit", mentions: "1 to 1000000")
        }
    }

    @Test(arguments: TestEngines.all)
    func anExpiredTokenIs401(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let created = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner,
                                             json: ["name": "short", "role": "member", "expires_at": "2099-01-01T00:00:00Z"])
            let text = try #require(created.json["token"] as? String)
            let id = try #require(created.json["id"] as? String)
            #expect(try await app.call(.get, "/api/v1/installs", token: text).status == .ok)
            try await app.runtime.database.transaction { db in
                try await db.raw("UPDATE api_tokens SET expires_at = \(bind: Timestamp.nowMillis() - 1) WHERE id = \(bind: id)").run()
            }
            expectProblem(try await app.call(.get, "/api/v1/installs", token: text), .unauthorized, "unauthenticated")
        }
    }
}
