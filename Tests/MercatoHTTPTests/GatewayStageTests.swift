import Foundation
import HTTPTypes
@testable import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// The gateway's stages one at a time, called directly (no HTTP request for the stage; the
/// app and install are made through the API): what each decides from its inputs alone.
@Suite("Gateway stages alone")
struct GatewayStageTests {
    static let plugins = GatewayTests.plugins

    static func incoming(id: String? = "msg_1", timestamp: String? = "1700000000", signature: String? = "v1,AAAA",
                         body: String = "{}") -> CommandGateway.Incoming {
        CommandGateway.Incoming(webhookID: id, timestamp: timestamp, signature: signature, body: Array(body.utf8), requestID: "req_stage", client: "198.51.100.9")
    }

    static func incoming(_ headers: HTTPFields, _ body: String) -> CommandGateway.Incoming {
        incoming(id: headers[HTTPField.Name("webhook-id")!], timestamp: headers[HTTPField.Name("webhook-timestamp")!],
                 signature: headers[HTTPField.Name("webhook-signature")!], body: body)
    }

    // MARK: Authenticate

    /// Each header missing or malformed is a 400 `missing_header` naming it, the first in the
    /// order id, timestamp, signature; well-formed ones come back parsed.
    @Test func signatureHeadersNameTheFirstMissingOrMalformedOne() throws {
        let cases: [(CommandGateway.Incoming, String)] = [
            (Self.incoming(id: nil), "The `webhook-id` header is required."),
            (Self.incoming(id: ""), "The `webhook-id` header is required."),
            (Self.incoming(id: "has space", timestamp: nil), "The `webhook-id` header must be 1-128 characters of A-Z a-z 0-9 _ . -."),
            (Self.incoming(id: String(repeating: "a", count: 129)), "The `webhook-id` header must be 1-128 characters of A-Z a-z 0-9 _ . -."),
            (Self.incoming(timestamp: nil, signature: nil), "The `webhook-timestamp` header is required."),
            (Self.incoming(timestamp: "-1"), "The `webhook-timestamp` header must be Unix seconds in digits."),
            (Self.incoming(timestamp: "17e8"), "The `webhook-timestamp` header must be Unix seconds in digits."),
            (Self.incoming(timestamp: String(repeating: "1", count: 19)), "The `webhook-timestamp` header must be Unix seconds in digits."),
            (Self.incoming(signature: ""), "The `webhook-signature` header is required."),
        ]
        for (incoming, detail) in cases {
            guard case .failure(let error) = CommandGateway.signatureHeaders(incoming) else {
                Issue.record("accepted: \(incoming)")
                continue
            }
            #expect(error.status == 400 && error.code == "missing_header")
            #expect(error.detail == detail)
        }
        let good = try CommandGateway.signatureHeaders(Self.incoming(id: "msg_A-z.0_9", timestamp: "0001700000000")).get()
        #expect(good == CommandGateway.SignatureHeaders(webhookID: "msg_A-z.0_9", timestampText: "0001700000000", timestamp: 1_700_000_000, signature: "v1,AAAA"))
    }

    /// The typed body decodes what decoding into `JSONValue` and picking fields did, odd
    /// bodies included: the same refusals, the same fields.
    @Test func theBodyDecodesAsTheGenericDecodeDid() {
        let bodies = [
            "{}", "[]", "\"ins_x\"", "null", "5", "", "{not json", "{\"install_id\": \"ins_x\"} trailing",
            #"{"install_id": "ins_x", "command": "ping", "args": {}}"#,
            #"{"install_id": 5, "command": "ping"}"#,
            #"{"install_id": null, "command": ["ping"]}"#,
            #"{"install_id": true, "command": false, "args": 3}"#,
            #"{"install_id": "ins_x", "command": 5, "args": [1]}"#,
            #"{"install_id": "ins_x", "command": "ping", "args": null}"#,
            #"{"install_id": "ins_x", "command": "ping", "args": "x"}"#,
            #"{"install_id": "ins_x", "command": "ping", "args": {"a": [1, 2.5, true, null, {"b": "c"}], "s": "\u00e9\n"}}"#,
            #"{"install_id": "ins_\u0078", "command": "p\u0069ng"}"#,
            #"{"install_id": "ins_x", "command": "ping", "command": "teleport"}"#,
            #"{"install_id": "ins_x", "command": "ping", "note": 1e400}"#,
            #"{"install_id": "ins_x", "command": "ping", "note": "\ud800"}"#,
            #"{"install_id": "ins_x", "command": "ping", "args": {"n": 1e400}}"#,
            #"{"install_id": 1e400, "command": "ping"}"#,
        ]
        for text in bodies {
            let generic = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)))?.objectValue
            let typed = CommandBody.decode(Array(text.utf8))
            #expect((generic == nil) == (typed == nil), "\(text): \(String(describing: generic)) vs \(String(describing: typed))")
            if let generic, let typed {
                #expect(typed == CommandBody(installID: generic["install_id"]?.stringValue, command: generic["command"]?.stringValue, args: generic["args"]), "\(text)")
            }
        }
        // And what they are, so the comparison above is not only self-consistent.
        #expect(CommandBody.decode(Array("[]".utf8)) == nil)
        #expect(CommandBody.decode(Array("{not json".utf8)) == nil)
        #expect(CommandBody.decode(Array(#"{"install_id": 5, "command": "ping"}"#.utf8)) == CommandBody(installID: nil, command: "ping", args: nil))
        #expect(CommandBody.decode(Array(#"{"install_id": "ins_x", "command": 5, "args": [1]}"#.utf8))
                == CommandBody(installID: "ins_x", command: nil, args: .array([.number(1)])))
        #expect(CommandBody.decode(Array(#"{"install_id": "ins_x", "args": null}"#.utf8)) == CommandBody(installID: "ins_x", command: nil, args: .null))
        #expect(CommandBody.decode(Array(#"{"command": "ping", "args": {"k": "v"}}"#.utf8)) == CommandBody(installID: nil, command: "ping", args: .object(["k": .string("v")])))
        // A repeated member's later value is read too (JSONDecoder only scanned it), so one no
        // JSONValue holds refuses the body: stricter than before, on purpose.
        #expect(CommandBody.decode(Array(#"{"install_id": "ins_x", "command": "ping", "x": 1, "x": 1e400}"#.utf8)) == nil)
        #expect(CommandBody.decode(Array(#"{"install_id": "ins_x", "command": "ping", "command": "teleport"}"#.utf8))
                == CommandBody(installID: "ins_x", command: "ping", args: nil))
        // A member the gateway does not read must still decode, as it had to before.
        #expect(CommandBody.decode(Array(#"{"install_id": "ins_x", "command": "ping", "note": 1e400}"#.utf8)) == nil)
        #expect(CommandBody.decode(Array(#"{"install_id": "ins_x", "command": "ping", "note": "\ud800"}"#.utf8)) == nil)
        // A repeated member keeps its first value.
        #expect(CommandBody.decode(Array(#"{"install_id": "ins_x", "command": "ping", "command": "teleport"}"#.utf8))?.command == "ping")
    }

    /// Credential first, then the timestamp; each refusal unauthenticated (no log row).
    @Test(arguments: TestEngines.all)
    func authenticateVerifiesTheCredentialThenTheTimestamp(engine: StorageEngine) async throws {
        try await withApp(engine, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let gateway = app.runtime.gateway
            func refusal(_ stage: CommandGateway.Stage<CommandGateway.SignedRequest>, sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any] {
                guard case .answer(let answer) = stage else {
                    Issue.record("not refused", sourceLocation: sourceLocation)
                    return [:]
                }
                #expect(answer.isProblem, sourceLocation: sourceLocation)
                return (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
            }

            var (h, b) = try s.sign(["install_id": s.installID, "command": "ping", "args": ["k": 1]], id: "msg_stage_ok")
            guard case .next(let signed) = await gateway.authenticate(Self.incoming(h, b)) else {
                Issue.record("a good request was refused")
                return
            }
            #expect(signed.webhookID == "msg_stage_ok" && signed.installID == s.installID && signed.entry.target.install.id == s.installID)
            #expect(signed.body == CommandBody(installID: s.installID, command: "ping", args: .object(["k": .number(1)])))
            #expect(signed.bytes == Array(b.utf8) && signed.requestID == "req_stage")

            // Signed well but 301 s old: the signature is judged first, then the time.
            (h, b) = try s.sign(["install_id": s.installID, "command": "ping"], timestamp: Int(Date().timeIntervalSince1970) - 301)
            let old = refusal(await gateway.authenticate(Self.incoming(h, b)))
            #expect(old["code"] as? String == "timestamp_out_of_window" && old["status"] as? Int == 401)
            #expect((old["detail"] as? String)?.contains("server time") == true)
            // Old and signed with another secret: the signature answers.
            (h, b) = try s.sign(["install_id": s.installID, "command": "ping"], timestamp: Int(Date().timeIntervalSince1970) - 301,
                                secret: "whsec_" + Data(repeating: 3, count: 32).base64EncodedString())
            let forged = refusal(await gateway.authenticate(Self.incoming(h, b)))
            #expect(forged["code"] as? String == "invalid_signature")
            #expect(forged["detail"] as? String == CommandGateway.signatureMismatch.detail)
            // No such install, or none named: nothing to verify against.
            for body in [["install_id": "ins_01jdnothere00000000000000", "command": "ping"], ["install_id": 7, "command": "ping"]] as [[String: Any]] {
                (h, b) = try s.sign(body)
                let unknown = refusal(await gateway.authenticate(Self.incoming(h, b)))
                #expect(unknown["code"] as? String == "invalid_signature")
                #expect(unknown["detail"] as? String == CommandGateway.unverifiable.detail)
            }
            // Not an object: malformed, before any install is looked at.
            let array = refusal(await gateway.authenticate(Self.incoming(s.headers(id: "msg_arr", timestamp: Int(Date().timeIntervalSince1970), body: "[]", secret: s.secret), "[]")))
            #expect(array["code"] as? String == "malformed_json" && array["status"] as? Int == 400)

            let rows = try await app.runtime.database.read { try await $0.raw("SELECT COUNT(*) AS n FROM command_log").first()?.decode(column: "n", as: Int.self) }
            #expect(rows == 0)
        }
    }

    // MARK: Admit and dispatch

    /// An authenticated ping of `s`, through the first two stages.
    func authenticated(_ app: AppHarness, _ s: CommandSender, _ body: [String: Any]) async throws -> CommandGateway.AuthenticatedCommand {
        let (h, b) = try s.sign(body)
        guard case .next(let signed) = await app.runtime.gateway.authenticate(Self.incoming(h, b)),
              case .next(let command) = await app.runtime.gateway.confirm(signed, claiming: false) else {
            throw StageFailure()
        }
        return command
    }

    struct StageFailure: Error {}

    func problem(_ verdict: CommandGateway.Verdict) -> (Int, String?) {
        let json = (try? JSONSerialization.jsonObject(with: verdict.answer.body)) as? [String: Any]
        return (verdict.answer.status, json?["code"] as? String)
    }

    /// Install state, then the key (running, another body, a stored answer), then the rate:
    /// each decision with what it keeps.
    @Test(arguments: TestEngines.all)
    func admitDecidesTheInstallTheKeyThenTheRate(engine: StorageEngine) async throws {
        try await withApp(engine, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let gateway = app.runtime.gateway
            var command = try await authenticated(app, s, ["install_id": s.installID, "command": "ping"])
            #expect(command.name == "ping" && command.stored == nil && command.id.hasPrefix("cmd_"))
            func answered(_ admission: CommandGateway.Admission, sourceLocation: SourceLocation = #_sourceLocation) -> CommandGateway.Verdict? {
                guard case .answered(let verdict, _) = admission else {
                    Issue.record("admitted", sourceLocation: sourceLocation)
                    return nil
                }
                return verdict
            }

            var inactive = command
            inactive.target.install.status = .disabled
            let disabled = try #require(answered(await gateway.admit(inactive, reserved: true)))
            #expect(problem(disabled) == (403, "install_inactive") && disabled.keep == .nothing)
            inactive.target.install.status = .uninstalled
            let gone = try #require(answered(await gateway.admit(inactive, reserved: true)))
            #expect(problem(gone) == (404, "unknown_install") && gone.keep == .nothing)

            let running = try #require(answered(await gateway.admit(command, reserved: false)))
            #expect(problem(running) == (409, "idempotency_in_progress") && running.keep == .nothing)
            // Another node holds the key (or answered it since the check).
            var elsewhere = command
            elsewhere.claim = .refused
            let held = try #require(answered(await gateway.admit(elsewhere, reserved: true)))
            #expect(problem(held) == (409, "idempotency_in_progress") && held.keep == .nothing)

            command.stored = IdempotencyRecord(appId: command.target.install.appId, webhookId: command.webhookID, bodySha256: "other",
                                               httpStatus: IdempotencyRecord.unanswered, response: "", createdAt: 1)
            let conflict = try #require(answered(await gateway.admit(command, reserved: true)))
            #expect(problem(conflict) == (409, "idempotency_conflict") && conflict.keep == .nothing)

            command.stored?.bodySha256 = command.bodyHash
            command.stored?.httpStatus = 201
            command.stored?.response = #"{"kept":true}"#
            let replay = try #require(answered(await gateway.admit(command, reserved: true)))
            #expect(replay.answer.status == 201 && !replay.answer.isProblem && replay.answer.outcome == "replayed" && replay.keep == .nothing)
            #expect(String(decoding: replay.answer.body, as: UTF8.self) == #"{"kept":true}"#)
            #expect(replay.answer.headers.contains { $0 == ("Idempotent-Replayed", "true") })

            // Unanswered with the same body: judged again, so on to the rate; one at once here.
            command.stored?.httpStatus = IdempotencyRecord.unanswered
            command.target.rate = RateLimiter.Limit(perSecond: 0.01, burst: 1)
            guard case .admitted(let rate) = await gateway.admit(command, reserved: true) else {
                Issue.record("refused within the rate")
                return
            }
            #expect(rate.allowed && rate.limit == 1 && rate.remaining == 0)
            let limited = try #require(answered(await gateway.admit(command, reserved: true)))
            #expect(problem(limited) == (429, "rate_limited") && limited.keep == .bodyHash)
            #expect(limited.answer.headers.contains { $0.0 == "Retry-After" })
        }
    }

    /// Dispatch refuses what the body names wrongly before any handler runs, keeping the body
    /// hash; a handler's answer is kept whole.
    @Test(arguments: TestEngines.all)
    func dispatchJudgesTheCommandThenRunsIt(engine: StorageEngine) async throws {
        try await withApp(engine, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let gateway = app.runtime.gateway
            let cases: [([String: Any], Int, String, String)] = [
                (["install_id": s.installID, "command": 5], 404, "unknown_command", "The body names no `command`."),
                (["install_id": s.installID, "command": "teleport"], 404, "unknown_command", "No plugin serves `teleport`."),
                (["install_id": s.installID, "command": "install.config"], 403, "scope_missing",
                 "`install.config` needs the scope config:read, which this install was not granted."),
                (["install_id": s.installID, "command": "ping", "args": [1]], 422, "invalid_args", "`args` must be an object"),
            ]
            for (body, status, code, detail) in cases {
                let verdict = await gateway.dispatch(try await authenticated(app, s, body))
                let json = (try? JSONSerialization.jsonObject(with: verdict.answer.body)) as? [String: Any]
                #expect(verdict.answer.status == status && json?["code"] as? String == code && verdict.keep == .bodyHash, "\(body)")
                #expect(json?["detail"] as? String == detail)
            }
            let ping = await gateway.dispatch(try await authenticated(app, s, ["install_id": s.installID, "command": "ping", "args": NSNull()]))
            #expect(ping.answer.status == 200 && ping.keep == .answer && !ping.sealed, "\(String(decoding: ping.answer.body, as: UTF8.self))")
        }
    }
}
