import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import HummingbirdTesting
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
            #expect(plain.json["expires_at"] is NSNull)

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

    /// `RateLimit-*` on every answer to a token (errors too); past the limit 429 with `Retry-After`.
    @Test(arguments: TestEngines.all)
    func theHourlyLimitIsAnnouncedThenEnforced(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let created = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner,
                                             json: ["name": "small", "role": "member", "hourly_limit": 4])
            let token = try #require(created.json["token"] as? String)
            let paths = ["/api/v1/installs", "/api/v1/installs/ins_01jdnotthere0000000000000", "/api/v1/installs", "/api/v1/installs"]
            for (n, path) in paths.enumerated() {
                let answer = try await app.call(.get, path, token: token)
                #expect(answer.status == (n == 1 ? .notFound : .ok), "\(answer.text)")
                #expect(answer.headers[HTTPField.Name("RateLimit-Limit")!] == "4")
                #expect(answer.headers[HTTPField.Name("RateLimit-Remaining")!] == String(3 - n))
                let reset = Int(answer.headers[HTTPField.Name("RateLimit-Reset")!] ?? "") ?? 0
                #expect((1 ... 3600).contains(reset))
            }
            let refused = try await app.call(.get, "/api/v1/installs", token: token)
            expectProblem(refused, .tooManyRequests, "rate_limited")
            #expect(refused.headers[HTTPField.Name("RateLimit-Remaining")!] == "0")
            #expect((1 ... 3600).contains(Int(refused.headers[.retryAfter] ?? "") ?? 0))
            // Another token of the org has its own allowance; a request without a token has no headers.
            let list = try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: owner)
            #expect(list.status == .ok)
            #expect(list.headers[HTTPField.Name("RateLimit-Limit")!] == "1000")
            #expect(try await app.call(.get, "/api/v1/installs").headers[HTTPField.Name("RateLimit-Limit")!] == nil)
        }
    }

    /// Two nodes on one PostgreSQL: the token's requests over both stay within its limit.
    @Test func theHourlyLimitHoldsAcrossNodes() async throws {
        try await withNodes(.postgres, count: 2) { nodes in
            let (org, owner) = try await nodes[0].makeOrg()
            let created = try await nodes[1].call(.post, "/api/v1/orgs/\(org)/tokens", token: owner,
                                                  json: ["name": "shared", "role": "member", "hourly_limit": 20])
            let token = try #require(created.json["token"] as? String)
            let id = try #require(created.json["id"] as? String)
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for i in 0 ..< 50 { group.addTask { try await nodes[i % 2].getConcurrently("/api/v1/installs", token: token) } }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            let passed = answers.filter { $0.status == .ok }.count
            // Each node alone would let 20 through (40 in all); a window ending mid-test could add some.
            #expect(passed >= 1 && passed <= 20, "\(passed) passed")
            for a in answers where a.status != .ok {
                #expect(a.status == .tooManyRequests && a.json["code"] as? String == "rate_limited", "\(a.status) \(a.text)")
                #expect(a.headers[.retryAfter] != nil)
            }
            let counted = try await nodes[0].runtime.database.read { db in
                try await db.raw("SELECT SUM(hits) AS n FROM token_hourly_counts WHERE token_id = \(bind: id)").first()?.decode(column: "n", as: Int.self)
            }
            #expect(counted == 50)
        }
    }

    /// The usage log: every request of the token, newest first, paged; `last_used_at` follows;
    /// another org's token is 404; the retention sweep removes old rows.
    @Test(arguments: TestEngines.all)
    func usageIsLoggedPagedAndSwept(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let (otherOrg, otherOwner) = try await app.makeOrg(name: "Other")
            let created = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": "logged", "role": "member"])
            let token = try #require(created.json["token"] as? String)
            let id = try #require(created.json["id"] as? String)
            let first = try await app.call(.get, "/api/v1/installs?limit=5", token: token)
            let second = try await app.call(.get, "/api/v1/installs/ins_01jdnotthere0000000000000", token: token)
            let third = try await app.call(.get, "/api/v1/installs?limit=0", token: token)
            #expect([first.status, second.status, third.status] == [.ok, .notFound, .unprocessableContent])

            var rows: [[String: Any]] = []
            for _ in 0 ..< 50 {
                let usage = try await app.call(.get, "/api/v1/orgs/\(org)/tokens/\(id)/usage", token: owner)
                #expect(usage.status == .ok, "\(usage.text)")
                rows = usage.json["data"] as? [[String: Any]] ?? []
                if rows.count >= 3 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(rows.count == 3)
            #expect(rows.map { $0["path"] as? String ?? "" } == ["/api/v1/installs", "/api/v1/installs/{id}", "/api/v1/installs"])
            #expect(rows.map { $0["status"] as? Int ?? 0 } == [422, 404, 200])
            #expect(rows.map { $0["request_id"] as? String ?? "" }
                    == [third, second, first].map { $0.headers[HTTPField.Name("X-Request-Id")!] ?? "-" })
            #expect(rows.allSatisfy { $0["method"] as? String == "GET" && $0["at"] is String })

            let page = try await app.call(.get, "/api/v1/orgs/\(org)/tokens/\(id)/usage?limit=2", token: owner)
            #expect((page.json["data"] as? [Any])?.count == 2)
            let cursor = try #require(page.json["next_cursor"] as? String)
            let rest = try await app.call(.get, "/api/v1/orgs/\(org)/tokens/\(id)/usage?limit=2&cursor=\(cursor)", token: owner)
            #expect((rest.json["data"] as? [[String: Any]])?.map { $0["status"] as? Int } == [200])
            #expect(rest.json["next_cursor"] is NSNull)

            let list = try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: owner)
            let row = (list.json["data"] as? [[String: Any]])?.first { $0["id"] as? String == id }
            #expect(row?["last_used_at"] is String)

            expectProblem(try await app.call(.get, "/api/v1/orgs/\(otherOrg)/tokens/\(id)/usage", token: otherOwner), .notFound, "not_found")
            expectProblem(try await app.call(.get, "/api/v1/orgs/\(org)/tokens/\(id)/usage", token: token), .forbidden, "forbidden")

            // Thirty-one days later the sweep removes them.
            let later = WallClock { Date().addingTimeInterval(31 * 86400) }
            _ = try await RetentionService(database: app.runtime.database, clock: later, logger: app.logs.logger(), idempotencyHours: 48,
                                           commandLogDays: 30).sweep()
            let left = try await app.call(.get, "/api/v1/orgs/\(org)/tokens/\(id)/usage", token: owner)
            // (The token's own refused request above may be written after the sweep.)
            let statuses = (left.json["data"] as? [[String: Any]])?.map { $0["status"] as? Int ?? 0 }
            #expect(statuses?.allSatisfy { $0 == 403 } == true, "\(left.text)")
        }
    }
}

extension TokenTests {
    /// The tokens page: scopes in plain words, expiry and hourly limit on the form; the list shows
    /// them with the last use, linking to the usage page.
    @Test(arguments: TestEngines.all)
    func thePageCreatesScopedTokensAndShowsTheirUsage(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let page = try await app.signedIn(org: org, role: "owner", by: owner, email: "own@example.com")
            let form = try await page.get("/settings/tokens")
            #expect(form.text.contains("See installed apps, their settings and logs"))
            #expect(form.text.contains("name=\"expires_on\"") && form.text.contains("name=\"hourly_limit\""))

            let refused = try await page.post("/settings/tokens", ["name": "too much", "role": "member", "scopes": "apps:write"], csrfFrom: "/settings/tokens")
            #expect(refused.status == .unprocessableContent)
            #expect(refused.text.contains("beyond the member role"))
            let past = try await page.post("/settings/tokens", ["name": "old", "role": "member", "expires_on": "2001-01-01"], csrfFrom: "/settings/tokens")
            #expect(past.status == .unprocessableContent)
            #expect(past.text.contains("Choose a day in the future"))

            let made = try await page.post("/settings/tokens", ["name": "reader", "role": "admin", "scopes": "installs:read", "expires_on": "2099-03-01",
                                                                "hourly_limit": "1000"], csrfFrom: "/settings/tokens")
            #expect(made.status == .ok)
            let text = try #require(made.text.range(of: #"mct_[A-Za-z0-9_-]{43}"#, options: .regularExpression).map { String(made.text[$0]) })
            let list = try await app.call(.get, "/api/v1/orgs/\(org)/tokens", token: owner)
            let row = try #require((list.json["data"] as? [[String: Any]])?.first { $0["name"] as? String == "reader" })
            #expect(row["scopes"] as? [String] == ["installs:read"])
            #expect(row["hourly_limit"] as? Int == 1000)
            #expect((row["expires_at"] as? String)?.hasPrefix("2099-03-01T00:00:00") == true)
            let id = try #require(row["id"] as? String)

            #expect(try await app.call(.get, "/api/v1/installs", token: text).status == .ok)
            var usage = try await page.get("/settings/tokens/\(id)/usage")
            for _ in 0 ..< 50 where !usage.text.contains("/api/v1/installs") {
                try await Task.sleep(for: .milliseconds(100))
                usage = try await page.get("/settings/tokens/\(id)/usage")
            }
            #expect(usage.status == .ok)
            #expect(usage.text.contains("GET /api/v1/installs"))
            let listed = try await page.get("/settings/tokens")
            #expect(listed.text.contains("/settings/tokens/\(id)/usage"))
            #expect(listed.text.contains("2099-03-01"))
            #expect(listed.text.contains("1,000"))
            #expect(!listed.text.contains(text))
        }
    }
}

extension AppHarness {
    /// A GET over its own connection from the shared pool (several at once on a live node).
    func getConcurrently(_ path: String, token: String) async throws -> Answer {
        try await sendConcurrently(.GET, path, token: token)
    }

    /// Any request over its own connection from the shared pool.
    func sendConcurrently(_ method: HTTPMethod, _ path: String, token: String, body: String? = nil, headers extra: [String: String] = [:]) async throws -> Answer {
        let port = try #require(client.port)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await Self.pool.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        var fields = HTTPFields()
        for (name, value) in response.headers { if let n = HTTPField.Name(name) { fields[n] = value } }
        return Answer(status: HTTPResponse.Status(code: Int(response.status.code)), headers: fields, text: String(buffer: bytes))
    }
}
