import Foundation
import HTTPTypes
import MercatoCore
import MercatoStorage
import SQLKit
import MercatoTestSupport
import Testing

@Suite("Orgs and API tokens over HTTP")
struct TenancyTests {
    @Test(arguments: TestEngines.all)
    func operatorCreatesOrgsAndTokensShownOnce(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let org = try await app.call(.post, "/api/v1/orgs", token: app.operatorToken, json: ["name": "Acme Corp", "plan": "pro"])
            #expect(org.status == .created)
            let id = try #require(org.json["id"] as? String)
            #expect(RecordID.isValid(id, prefix: "org"))
            #expect(org.json["name"] as? String == "Acme Corp")
            #expect(org.json["plan"] as? String == "pro")

            let token = try await app.call(.post, "/api/v1/orgs/\(id)/tokens", token: app.operatorToken, json: ["name": "ci bot", "role": "admin"])
            #expect(token.status == .created)
            let text = try #require(token.json["token"] as? String)
            #expect(text.hasPrefix("mct_"))
            #expect((token.json["id"] as? String).map { RecordID.isValid($0, prefix: "tok") } == true)
            #expect(token.json["role"] as? String == "admin")
            // The new token works, and the text is stored only as a digest.
            let read = try await app.call(.get, "/api/v1/orgs/\(id)", token: text)
            #expect(read.status == .ok)
            #expect(read.json["id"] as? String == id)
            let stored = try await app.runtime.database.read { db in
                try await db.raw("SELECT token_hash FROM api_tokens").all().map { try $0.decode(column: "token_hash", as: String.self) }
            }
            #expect(!stored.contains(text))
        }
    }

    /// Who may do what, including another org's resources answering 404, never 403.
    @Test(arguments: TestEngines.all)
    func roleAndCrossOrgMatrix(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (orgA, ownerA) = try await app.makeOrg(name: "A")
            let (orgB, ownerB) = try await app.makeOrg(name: "B")
            let adminA = try await app.makeToken(org: orgA, role: "admin", by: ownerA)
            let developerA = try await app.makeToken(org: orgA, role: "developer", by: ownerA)
            let memberA = try await app.makeToken(org: orgA, role: "member", by: ownerA)
            let newToken: [String: Any] = ["name": "x", "role": "member"]

            struct Case { let token: String; let method: HTTPRequest.Method; let path: String; let body: [String: Any]?; let status: HTTPResponse.Status; let code: String? }
            let cases: [Case] = [
                // Creating orgs: operator only.
                Case(token: ownerA, method: .post, path: "/api/v1/orgs", body: ["name": "n", "plan": "free"], status: .forbidden, code: "forbidden"),
                Case(token: memberA, method: .post, path: "/api/v1/orgs", body: ["name": "n", "plan": "free"], status: .forbidden, code: "forbidden"),
                // Tokens: the org's owners and the operator.
                Case(token: ownerA, method: .post, path: "/api/v1/orgs/\(orgA)/tokens", body: newToken, status: .created, code: nil),
                Case(token: adminA, method: .post, path: "/api/v1/orgs/\(orgA)/tokens", body: newToken, status: .forbidden, code: "forbidden"),
                Case(token: developerA, method: .post, path: "/api/v1/orgs/\(orgA)/tokens", body: newToken, status: .forbidden, code: "forbidden"),
                Case(token: memberA, method: .post, path: "/api/v1/orgs/\(orgA)/tokens", body: newToken, status: .forbidden, code: "forbidden"),
                Case(token: app.operatorToken, method: .post, path: "/api/v1/orgs/\(orgB)/tokens", body: newToken, status: .created, code: nil),
                // Another org: 404, whatever the role.
                Case(token: ownerA, method: .post, path: "/api/v1/orgs/\(orgB)/tokens", body: newToken, status: .notFound, code: "not_found"),
                Case(token: ownerB, method: .post, path: "/api/v1/orgs/\(orgA)/tokens", body: newToken, status: .notFound, code: "not_found"),
                Case(token: ownerA, method: .get, path: "/api/v1/orgs/\(orgB)", body: nil, status: .notFound, code: "not_found"),
                Case(token: memberA, method: .get, path: "/api/v1/orgs/\(orgA)", body: nil, status: .ok, code: nil),
                Case(token: app.operatorToken, method: .get, path: "/api/v1/orgs/org_01jdnotthere0000000000000", body: nil, status: .notFound, code: "not_found"),
            ]
            for c in cases {
                let answer = try await app.call(c.method, c.path, token: c.token, json: c.body)
                if let code = c.code {
                    expectProblem(answer, c.status, code)
                } else {
                    #expect(answer.status == c.status, "\(c.method) \(c.path): \(answer.text)")
                }
            }
        }
    }

    @Test(arguments: TestEngines.all)
    func invalidTokenRequestsNameTheirFields(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let answer = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": "", "role": "root"])
            expectProblem(answer, .unprocessableContent, "invalid_request")
            #expect(Set((answer.json["errors"] as? [[String: String]] ?? []).compactMap { $0["field"] }) == ["name", "role"])
        }
    }

    @Test(arguments: TestEngines.all)
    func bootstrapOperatorTokenIsCreatedOnceAndWorks(engine: StorageEngine) async throws {
        try await withTestRuntime(engine) { runtime async throws in
            let first = try await runtime.tenancy.bootstrapOperatorToken()
            let token = try #require(first)
            #expect(try await runtime.tenancy.bootstrapOperatorToken() == nil)
            #expect(try await runtime.tenancy.authenticate(token: token)?.isOperator == true)
            #expect(try await runtime.tenancy.authenticate(token: token + "x") == nil)
        }
    }

    @Test func tokensAndBodiesNeverReachTheLogs() async throws {
        try await withApp(.sqlite) { app async throws in
            let (org, owner) = try await app.makeOrg(name: "Logged Org Name")
            let member = try await app.makeToken(org: org, role: "member", by: owner)
            _ = try await app.call(.get, "/api/v1/orgs/\(org)", token: member)
            _ = try await app.call(.get, "/api/v1/orgs/\(org)", token: "mct_wrong-guess-token")
            let lines = app.logs.all
            #expect(lines.count >= 5)
            for line in lines {
                for secret in [app.operatorToken, owner, member, "mct_wrong-guess-token", "Logged Org Name"] {
                    #expect(!line.contains(secret), "log line leaks: \(line)")
                }
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(object["request_id"] is String)
            }
            let line = try #require(lines.first { $0.contains("\"route\":\"/api/v1/orgs/{org_id}\"") || $0.contains("/api/v1/orgs/:org_id") })
            for field in ["method", "route", "status", "duration_ms", "request_id"] { #expect(line.contains("\"\(field)\"")) }
        }
    }
}
