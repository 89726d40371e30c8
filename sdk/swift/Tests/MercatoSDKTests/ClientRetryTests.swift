import Foundation
import MercatoSDK
import Testing

/// The client against ``ScriptedHTTPServer``: what it sends, and what it does with each answer.
@Suite("MercatoClient against a scripted server")
struct ClientRetryTests {
    static let secret = "whsec_" + Data((100..<132).map { UInt8($0) }).base64EncodedString()
    static let fast = RetryPolicy(maxAttempts: 3, initialDelay: 0.01, maxDelay: 0.05, maxRetryAfter: 2, requestTimeout: 10)
    static let ok = ScriptedHTTPServer.Reply.answer(
        status: 200,
        headers: ["RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "1", "X-Request-Id": "req_ok"],
        body: #"{"id":"cmd_1","command":"ping","status":"succeeded","result":{"pong":true}}"#)

    static func problem(_ status: Int, _ code: String, headers: [String: String] = [:]) -> ScriptedHTTPServer.Reply {
        var all = headers
        all["Content-Type"] = "application/problem+json"
        return .answer(status: status, headers: all, body: """
            {"type":"https://mercato.dev/problems/\(code)","title":"T","status":\(status),"detail":"detail of \(code)","code":"\(code)","request_id":"req_\(status)"}
            """)
    }

    static func client(_ server: ScriptedHTTPServer, policy: RetryPolicy = fast) throws -> MercatoClient {
        MercatoClient(baseURL: server.baseURL, installID: "ins_test", signer: try CommandSigner(secret: secret), retryPolicy: policy)
    }

    /// Every request the server read carries a valid signature under the secret.
    static func expectSigned(_ requests: [ScriptedHTTPServer.Request]) throws {
        let verifier = try WebhookVerifier(secrets: [secret])
        for request in requests {
            #expect(request.method == "POST")
            #expect(request.path == "/api/v1/apps/commands")
            #expect(request.headers["content-type"] == "application/json")
            try verifier.verify(headers: request.headers, body: request.body)
        }
    }

    @Test("503 then 200: resent with the same webhook-id and the same body bytes")
    func retriesUnavailable() async throws {
        let server = try ScriptedHTTPServer([Self.problem(503, "unavailable", headers: ["Retry-After": "0"]), Self.ok])
        defer { server.stop() }
        let answer = try await Self.client(server).command("kv.set", args: ["key": "k", "value": ["b": 2, "a": "é"]])
        let requests = server.requests
        #expect(requests.count == 2)
        #expect(answer.attempts == 2)
        #expect(requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"])
        #expect(requests[0].headers["webhook-id"] == answer.webhookID)
        #expect(requests[0].body == requests[1].body)
        #expect(requests[0].body == Data(#"{"install_id":"ins_test","command":"kv.set","args":{"key":"k","value":{"a":"é","b":2}}}"#.utf8))
        try Self.expectSigned(requests)
        #expect(answer.status == 200)
        #expect(answer.result["pong"] == true)
        #expect(answer.commandID == "cmd_1")
        #expect(answer.replayed == false)
        #expect(answer.rateLimit == RateLimit(limit: 100, remaining: 99, reset: 1))
        #expect(answer.requestID == "req_ok")
    }

    @Test("a caller's webhook-id is sent as given; a replayed answer is reported")
    func callerWebhookID() async throws {
        let replay = ScriptedHTTPServer.Reply.answer(status: 200, headers: ["Idempotent-Replayed": "true"],
                                                     body: #"{"id":"cmd_1","command":"ping","status":"succeeded","result":{"pong":true}}"#)
        let server = try ScriptedHTTPServer([replay])
        defer { server.stop() }
        let answer = try await Self.client(server).command("ping", webhookID: "order-42.attempt_1")
        #expect(server.requests.first?.headers["webhook-id"] == "order-42.attempt_1")
        #expect(answer.replayed)
        #expect(answer.webhookID == "order-42.attempt_1")
        await #expect(throws: MercatoClientError.self) { try await Self.client(server).command("ping", webhookID: "has space") }
        #expect(server.requests.count == 1)
    }

    @Test("a problem answer becomes MercatoError with its code, status, detail and request id; a 401 is not retried")
    func problemAnswer() async throws {
        let server = try ScriptedHTTPServer([Self.problem(401, "invalid_signature")])
        defer { server.stop() }
        let error = await #expect(throws: MercatoError.self) { try await Self.client(server).command("ping") }
        #expect(error?.code == "invalid_signature")
        #expect(error?.status == 401)
        #expect(error?.detail == "detail of invalid_signature")
        #expect(error?.requestID == "req_401")
        #expect(error?.attempts == 1)
        #expect(server.requests.count == 1)
    }

    @Test("503 every time: gives up after maxAttempts and throws the last answer")
    func givesUp() async throws {
        let server = try ScriptedHTTPServer(Array(repeating: Self.problem(503, "unavailable"), count: 5))
        defer { server.stop() }
        let error = await #expect(throws: MercatoError.self) { try await Self.client(server).command("ping") }
        #expect(error?.status == 503)
        #expect(error?.attempts == 3)
        let requests = server.requests
        #expect(requests.count == 3)
        #expect(Set(requests.map { $0.headers["webhook-id"] ?? "" }).count == 1)
        #expect(Set(requests.map(\.body)).count == 1)
    }

    @Test("a Retry-After longer than the policy allows is not waited for")
    func longRetryAfter() async throws {
        let server = try ScriptedHTTPServer([Self.problem(429, "rate_limited", headers: ["Retry-After": "3600"]), Self.ok])
        defer { server.stop() }
        let error = await #expect(throws: MercatoError.self) { try await Self.client(server).command("ping") }
        #expect(error?.code == "rate_limited")
        #expect(error?.retryAfter == 3600)
        #expect(server.requests.count == 1)
    }

    @Test("429 with a short Retry-After and 409 idempotency_in_progress are retried")
    func retriedRefusals() async throws {
        let server = try ScriptedHTTPServer([Self.problem(429, "rate_limited", headers: ["Retry-After": "1"]),
                                             Self.problem(409, "idempotency_in_progress"), Self.ok])
        defer { server.stop() }
        let start = Date()
        let answer = try await Self.client(server).command("ping")
        #expect(answer.attempts == 3)
        #expect(Date().timeIntervalSince(start) >= 0.9, "Retry-After: 1 was honoured")
        #expect(Set(server.requests.map { $0.headers["webhook-id"] ?? "" }).count == 1)
    }

    @Test("a replayed 5xx and other 4xx answers are final")
    func finalAnswers() async throws {
        var replayed = Self.problem(500, "handler_failed")
        if case .answer(let status, var headers, let body) = replayed {
            headers["Idempotent-Replayed"] = "true"
            replayed = .answer(status: status, headers: headers, body: body)
        }
        let server = try ScriptedHTTPServer([replayed, Self.problem(409, "idempotency_conflict"), Self.problem(403, "scope_missing")])
        defer { server.stop() }
        let client = try Self.client(server)
        let first = await #expect(throws: MercatoError.self) { try await client.command("ping") }
        #expect(first?.code == "handler_failed")
        #expect(first?.replayed == true)
        let second = await #expect(throws: MercatoError.self) { try await client.command("ping") }
        #expect(second?.code == "idempotency_conflict")
        let third = await #expect(throws: MercatoError.self) { try await client.command("ping") }
        #expect(third?.code == "scope_missing")
        #expect(server.requests.count == 3)
    }

    @Test("a dropped connection is retried with the same id and body")
    func droppedConnection() async throws {
        let server = try ScriptedHTTPServer([.drop, Self.ok])
        defer { server.stop() }
        let answer = try await Self.client(server).command("ping", args: ["n": 1])
        let requests = server.requests
        #expect(answer.attempts >= 2)
        #expect(requests.count >= 2)
        #expect(Set(requests.map { $0.headers["webhook-id"] ?? "" }).count == 1)
        #expect(Set(requests.map(\.body)).count == 1)
        try Self.expectSigned(requests)
    }

    @Test("no server at all: a transport error after maxAttempts, naming the webhook-id to resend with")
    func refused() async throws {
        // A port bound but not listening: every connection is refused.
        let closed = try ScriptedHTTPServer([], listening: false)
        defer { closed.stop() }
        let client = MercatoClient(baseURL: closed.baseURL, installID: "ins_test", signer: try CommandSigner(secret: Self.secret), retryPolicy: Self.fast)
        let error = await #expect(throws: MercatoClientError.self) { try await client.command("ping", webhookID: "keep-me") }
        #expect(error?.kind == .transport)
        #expect(error?.attempts == 3)
        #expect(error?.webhookID == "keep-me")
    }

    @Test("a success whose body is not JSON is an invalid response")
    func invalidResponse() async throws {
        let server = try ScriptedHTTPServer([.answer(status: 200, headers: ["Content-Type": "text/plain"], body: "hello")])
        defer { server.stop() }
        let error = await #expect(throws: MercatoClientError.self) { try await Self.client(server).command("ping") }
        #expect(error?.kind == .invalidResponse)
    }
}
