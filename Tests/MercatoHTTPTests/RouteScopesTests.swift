import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoStorage
import MercatoTestSupport
import Testing

/// The scope table (CONTRACT §9): every route in it, the OpenAPI document agreeing, and tokens
/// refused outside their scopes.
@Suite("Route scopes")
struct RouteScopesTests {
    @Test func everyAPIRouteIsInTheScopeTable() async throws {
        try await withApp(.sqlite) { app async throws in
            let router = buildRouter(runtime: app.runtime, metrics: nil, logger: app.logs.logger())
            let api = router.routes.filter { $0.path.description.hasPrefix("/api/v1/") }
            #expect(api.count > 40)
            let missing = api.filter { !RouteScopes.isListed($0.method.rawValue, $0.path.description) }
                .map { "\($0.method.rawValue) \($0.path.description)" }
            #expect(missing.isEmpty, "routes without a scope in RouteScopes.table: \(missing)")
        }
    }

    @Test func theOpenAPIDocumentNamesEachOperationsScopeFirst() throws {
        let text = String(decoding: OpenAPIDocument.bytes, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        var operations = 0
        for (path, item) in paths {
            for (method, value) in item where ["get", "post", "put", "patch", "delete"].contains(method) {
                operations += 1
                let operation = try #require(value as? [String: Any])
                #expect(operation.keys.contains("x-mercato-scope"), "\(method) \(path) has no x-mercato-scope")
                let documented = operation["x-mercato-scope"] as? String
                let expected = path.hasPrefix("/api/v1/") ? RouteScopes.table[RouteScopes.key(method, path)] : .some(nil)
                #expect(expected != nil, "\(method) \(path) is documented but not in the scope table")
                #expect(documented == expected??.rawValue, "\(method) \(path): document says \(documented ?? "null"), table \(String(describing: expected))")
            }
        }
        #expect(operations > 40)
        // First key of each operation object, on its own line (merges stay clean).
        var current = ""
        for (index, line) in lines.enumerated() {
            if line.hasPrefix("    \"/") { current = line }
            guard line.range(of: #"^      "(get|post|put|patch|delete)": \{$"#, options: .regularExpression) != nil else { continue }
            #expect(lines[index + 1].hasPrefix("        \"x-mercato-scope\": "), "not first in \(current) \(line)")
        }
    }

    @Test(arguments: TestEngines.all)
    func aTokenOutsideItsScopesIs403NamingTheScope(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let created = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner,
                                             json: ["name": "reader", "role": "admin", "scopes": ["installs:read"]])
            let reader = try #require(created.json["token"] as? String)
            #expect(try await app.call(.get, "/api/v1/installs", token: reader).status == .ok)
            #expect(try await app.call(.get, "/api/v1/orgs/\(org)", token: reader).status == .ok)

            let write = try await app.call(.post, "/api/v1/installs", token: reader, json: ["app": "anything", "config": [:]])
            expectProblem(write, .forbidden, "token_scope_missing")
            #expect((write.json["detail"] as? String)?.contains("`installs:write`") == true, "\(write.text)")
            let catalog = try await app.call(.get, "/api/v1/apps", token: reader)
            expectProblem(catalog, .forbidden, "token_scope_missing")
            #expect((catalog.json["detail"] as? String)?.contains("`apps:read`") == true)
            let audit = try await app.call(.get, "/api/v1/audit", token: reader)
            expectProblem(audit, .forbidden, "token_scope_missing")
            #expect((audit.json["detail"] as? String)?.contains("`audit:read`") == true)

            // Without scopes of its own a token keeps its role's answers: a member's write is
            // the role's 403, an admin's goes through to the handler.
            let member = try await app.makeToken(org: org, role: "member", by: owner)
            expectProblem(try await app.call(.post, "/api/v1/installs", token: member, json: ["app": "anything", "config": [:]]), .forbidden, "forbidden")
            let admin = try await app.makeToken(org: org, role: "admin", by: owner)
            let install = try await app.call(.post, "/api/v1/installs", token: admin, json: ["app": "anything", "config": [:]])
            #expect(install.status != .forbidden, "\(install.text)")
        }
    }

    /// `MERCATO_OPENAPI_PUBLIC=0`: the document needs a token with `docs:read`; the page stays.
    @Test(arguments: TestEngines.all)
    func aProtectedOpenAPIDocumentNeedsDocsRead(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true, environment: ["MERCATO_OPENAPI_PUBLIC": "0"]) { app async throws in
            let (org, owner) = try await app.makeOrg()
            expectProblem(try await app.call(.get, "/api/v1/openapi.json"), .unauthorized, "unauthenticated")
            let reader = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": "r", "role": "member", "scopes": ["docs:read"]])
            let docs = try await app.call(.get, "/api/v1/openapi.json", token: try #require(reader.json["token"] as? String))
            #expect(docs.status == .ok)
            #expect((docs.json["openapi"] as? String)?.hasPrefix("3.1") == true)
            let other = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": "i", "role": "member", "scopes": ["installs:read"]])
            let refused = try await app.call(.get, "/api/v1/openapi.json", token: try #require(other.json["token"] as? String))
            expectProblem(refused, .forbidden, "token_scope_missing")
            #expect((refused.json["detail"] as? String)?.contains("`docs:read`") == true)
            let developer = try await app.signedIn(org: org, role: "developer", by: owner, email: "dev@example.com")
            #expect(try await developer.get("/developer/docs").status == .ok)
        }
        try await withApp(engine) { app async throws in
            #expect(try await app.call(.get, "/api/v1/openapi.json").status == .ok)
        }
    }

    /// `Mercato-API-Version: 1` on every API answer, errors included; pages need none.
    @Test func everyAPIAnswerCarriesTheVersion() async throws {
        try await withApp(.sqlite, pages: true) { app async throws in
            let (org, owner) = try await app.makeOrg()
            let answers = [
                try await app.call(.get, "/api/v1/orgs/\(org)", token: owner),
                try await app.call(.get, "/api/v1/installs"),
                try await app.call(.get, "/api/v1/nothing/here", token: owner),
                try await app.call(.delete, "/api/v1/installs", token: owner),
                try await app.call(.post, "/api/v1/orgs", token: owner, raw: "{"),
                try await app.call(.get, "/api/v1/openapi.json"),
            ]
            #expect(answers.map(\.status.code) == [200, 401, 404, 405, 400, 200])
            for answer in answers { #expect(answer.headers[HTTPField.Name("Mercato-API-Version")!] == "1", "\(answer.status)") }
            #expect(try await app.call(.get, "/healthz").headers[HTTPField.Name("Mercato-API-Version")!] == nil)
        }
    }
}
