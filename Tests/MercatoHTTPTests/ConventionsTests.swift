import Foundation
import HTTPTypes
import MercatoCore
import MercatoStorage
import SQLKit
import MercatoTestSupport
import Testing

@Suite("HTTP conventions: Problem Details, request ids, system routes")
struct ConventionsTests {
    let requestID = HTTPField.Name("X-Request-Id")!

    @Test(arguments: TestEngines.all)
    func systemRoutesAnswer(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let health = try await app.call(.get, "/healthz")
            #expect(health.status == .ok)
            #expect(health.json["status"] as? String == "ok")
            let ready = try await app.call(.get, "/readyz")
            #expect(ready.status == .ok)
            #expect(ready.json["status"] as? String == "ready")
            let metrics = try await app.call(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
        }
    }

    @Test func readyzSaysNotReadyWhenMigrationsAreBehind() async throws {
        try await withApp(.sqlite) { app async throws in
            try await app.runtime.database.transaction { try await $0.raw("DELETE FROM _migrations").run() }
            expectProblem(try await app.call(.get, "/readyz"), .serviceUnavailable, "not_ready")
        }
    }

    @Test func requestIDsAreEchoedWhenSafeAndGeneratedOtherwise() async throws {
        try await withApp(.sqlite) { app async throws in
            let echoed = try await app.call(.get, "/healthz", headers: [requestID: "trace-42.a_b:c"])
            #expect(echoed.headers[requestID] == "trace-42.a_b:c")
            let unsafe = try await app.call(.get, "/healthz", headers: [requestID: "bad id with spaces"])
            #expect(unsafe.headers[requestID]?.hasPrefix("req_") == true)
            let long = try await app.call(.get, "/healthz", headers: [requestID: String(repeating: "a", count: 129)])
            #expect(long.headers[requestID]?.hasPrefix("req_") == true)
            let none = try await app.call(.get, "/healthz")
            #expect(none.headers[requestID]?.hasPrefix("req_") == true)
        }
    }

    @Test(arguments: TestEngines.all)
    func unknownRouteAndWrongMethodAreProblems(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            expectProblem(try await app.call(.get, "/nope"), .notFound, "route_not_found")
            expectProblem(try await app.call(.get, "/api/v1/does/not/exist", token: app.operatorToken), .notFound, "route_not_found")
            let wrong = try await app.call(.delete, "/healthz")
            expectProblem(wrong, .methodNotAllowed, "method_not_allowed")
            #expect(wrong.headers[.allow] == "GET")
            let wrongParam = try await app.call(.put, "/api/v1/orgs/org_x/tokens", token: app.operatorToken)
            expectProblem(wrongParam, .methodNotAllowed, "method_not_allowed")
            #expect(wrongParam.headers[.allow] == "GET, POST")
        }
    }

    @Test(arguments: TestEngines.all)
    func badBodiesGetClearProblems(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let op = app.operatorToken
            expectProblem(try await app.call(.post, "/api/v1/orgs", token: op, raw: "{\"name\": \"x\", "), .badRequest, "malformed_json")
            expectProblem(try await app.call(.post, "/api/v1/orgs", token: op, raw: ""), .badRequest, "malformed_json")
            expectProblem(try await app.call(.post, "/api/v1/orgs", token: op, raw: "name=x", contentType: "application/x-www-form-urlencoded"),
                          .unsupportedMediaType, "unsupported_media_type")
            expectProblem(try await app.call(.post, "/api/v1/orgs", token: op, raw: "{}", contentType: nil), .unsupportedMediaType, "unsupported_media_type")
            let big = "{\"name\": \"" + String(repeating: "a", count: 1 << 20) + "\", \"plan\": \"free\"}"
            expectProblem(try await app.call(.post, "/api/v1/orgs", token: op, raw: big), .contentTooLarge, "payload_too_large")

            let missing = try await app.call(.post, "/api/v1/orgs", token: op, json: ["name": "Acme"])
            expectProblem(missing, .unprocessableContent, "invalid_request")
            #expect((missing.json["errors"] as? [[String: String]])?.first?["field"] == "plan")
            let wrongType = try await app.call(.post, "/api/v1/orgs", token: op, json: ["name": 5, "plan": "free"])
            expectProblem(wrongType, .unprocessableContent, "invalid_request")
            #expect((wrongType.json["errors"] as? [[String: String]])?.first?["field"] == "name")
            let both = try await app.call(.post, "/api/v1/orgs", token: op, json: ["name": "  ", "plan": "gold"])
            expectProblem(both, .unprocessableContent, "invalid_request")
            #expect(Set((both.json["errors"] as? [[String: String]] ?? []).compactMap { $0["field"] }) == ["name", "plan"])
            // PostgreSQL refuses NUL in text: a clear 422, never a 500.
            let nul = try await app.call(.post, "/api/v1/orgs", token: op, raw: #"{"name": "Ac\u0000me", "plan": "free"}"#)
            expectProblem(nul, .unprocessableContent, "invalid_request")
            #expect((nul.json["errors"] as? [[String: String]])?.first?["field"] == "name")
            let notObject = try await app.call(.post, "/api/v1/orgs", token: op, raw: "[1, 2]")
            expectProblem(notObject, .unprocessableContent, "invalid_request")
        }
    }

    @Test(arguments: TestEngines.all)
    func missingOrBadTokensAre401WithAChallenge(engine: StorageEngine) async throws {
        try await withApp(engine) { app async throws in
            let none = try await app.call(.post, "/api/v1/orgs", json: ["name": "x", "plan": "free"])
            expectProblem(none, .unauthorized, "unauthenticated")
            #expect(none.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            let bad = try await app.call(.post, "/api/v1/orgs", token: "mct_not-a-real-token", json: ["name": "x", "plan": "free"])
            expectProblem(bad, .unauthorized, "unauthenticated")
            #expect(bad.headers[.wwwAuthenticate]?.contains("invalid_token") == true)
            // The token's value is taken without the blanks around it; the scheme in any case.
            let padded = try await app.call(.post, "/api/v1/orgs", json: ["name": "Padded", "plan": "free"], headers: [.authorization: "bearer \t\(app.operatorToken) \t"])
            #expect(padded.status == .created, "\(padded.text)")
            let basic = try await app.call(.get, "/api/v1/orgs/org_x", headers: [.authorization: "Basic dXNlcjpwYXNz"])
            expectProblem(basic, .unauthorized, "unauthenticated")
            // The OpenAPI document needs no token.
            #expect(try await app.call(.get, "/api/v1/openapi.json").status == .ok)
        }
    }
}
