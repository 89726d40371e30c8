import Foundation
import HTTPTypes
import AsyncHTTPClient
import NIOHTTP1
import HummingbirdTesting
import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoHTTP
import MercatoStorage
import MercatoTestSupport
import NIOCore
import SQLKit
import Synchronization
import Testing

/// An installed app ready to send commands.
struct CommandSender {
    let installID: String
    let appKey: String
    let secret: String
    let adminToken: String
    let vendorToken: String

    /// A signed request's headers and body.
    func sign(_ body: [String: Any], id: String = "msg_" + UUID().uuidString, timestamp: Int = Int(Date().timeIntervalSince1970),
              secret override: String? = nil) throws -> (HTTPFields, String) {
        let text = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
        return (headers(id: id, timestamp: timestamp, body: text, secret: override ?? secret), text)
    }

    func headers(id: String, timestamp: Int, body: String, secret: String) -> HTTPFields {
        let content = StandardWebhooks.signedContent(id: id, timestamp: String(timestamp), body: Array(body.utf8))
        var h = HTTPFields()
        h[.contentType] = "application/json"
        h[HTTPField.Name("webhook-id")!] = id
        h[HTTPField.Name("webhook-timestamp")!] = String(timestamp)
        h[HTTPField.Name("webhook-signature")!] = StandardWebhooks.sign(content: content, secret: secret)!
        return h
    }
}

extension AppHarness {
    /// Publishes an hmac app with `scopes`, installs it in a fresh org, answers the sender.
    func commandSender(scopes: [String] = ["install:read", "probe:use"], key: String = "sender-app", customerPlan: String = "pro") async throws -> CommandSender {
        let (_, vendor) = try await makeOrg(plan: "enterprise", name: "Vendor")
        var m = manifest(key)
        m["scopes"] = scopes
        m["config"] = [["key": "token", "label": "Token", "type": "secret"]]
        let registered = try await registerApp(m, token: vendor)
        let secret = (registered["secrets"] as! [String: String])["command"]!
        _ = try await call(.post, "/api/v1/developer/apps/\(key)/publish", token: vendor)
        let (_, owner) = try await makeOrg(plan: customerPlan, name: "Customer")
        let installed = try await call(.post, "/api/v1/installs", token: owner, json: ["app": key, "config": ["token": "tok-secret-value"]])
        #expect(installed.status == .created, "\(installed.text)")
        return CommandSender(installID: installed.json["id"] as! String, appKey: key, secret: secret, adminToken: owner, vendorToken: vendor)
    }

    /// Sends over a real connection pool, so that requests run at the same time (the test
    /// client has a single connection and would queue them).
    func sendConcurrently(_ headers: HTTPFields, _ body: String) async throws -> Answer {
        let port = try #require(client.port)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/apps/commands")
        request.method = .POST
        for field in headers { request.headers.add(name: field.name.rawName, value: field.value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await Self.pool.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        var fields = HTTPFields()
        for (name, value) in response.headers { if let n = HTTPField.Name(name) { fields[n] = value } }
        return Answer(status: HTTPResponse.Status(code: Int(response.status.code)), headers: fields, text: String(buffer: bytes))
    }

    static let pool: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    func send(_ headers: HTTPFields, _ body: String) async throws -> Answer {
        try await client.execute(uri: "/api/v1/apps/commands", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            Answer(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }
}

@Suite("Signed command gateway over real HTTP")
struct GatewayTests {
    static let plugins: [any MercatoPlugin] = TestPlugins.all + [ProbePlugin()]

    @Test(arguments: TestEngines.all)
    func pingAndInstallInfoSucceedAndAreLogged(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let (h, b) = try s.sign(["install_id": s.installID, "command": "ping", "args": [:]])
            let ping = try await app.send(h, b)
            #expect(ping.status == .ok, "\(ping.text)")
            #expect((ping.json["result"] as? [String: Any])?["pong"] as? Bool == true)
            #expect(ping.json["status"] as? String == "succeeded")
            #expect((ping.json["id"] as? String)?.hasPrefix("cmd_") == true)
            for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] { #expect(ping.headers[HTTPField.Name(name)!] != nil) }

            let (h2, b2) = try s.sign(["install_id": s.installID, "command": "install.info"])
            let info = try await app.send(h2, b2)
            let result = try #require(info.json["result"] as? [String: Any])
            #expect(result["install_id"] as? String == s.installID)
            #expect(result["app"] as? String == s.appKey)
            #expect(result["org_name"] as? String == "Customer")
            #expect(result["scopes"] as? [String] == ["install:read", "probe:use"])

            let log = try await app.call(.get, "/api/v1/installs/\(s.installID)/commands", token: s.adminToken)
            let rows = try #require(log.json["data"] as? [[String: Any]])
            #expect(rows.map { $0["command"] as? String } == ["install.info", "ping"])
            #expect(rows.first?["outcome"] as? String == "succeeded")
            #expect(rows.first?["body_sha256"] as? String == Signatures.sha256Hex(Array(b2.utf8)))
            #expect(rows.first?["webhook_id"] as? String == h2[HTTPField.Name("webhook-id")!])
            let filtered = try await app.call(.get, "/api/v1/developer/apps/\(s.appKey)/commands?command=ping", token: s.vendorToken)
            #expect((filtered.json["data"] as? [[String: Any]])?.count == 1)
            expectProblem(try await app.call(.get, "/api/v1/developer/apps/\(s.appKey)/commands", token: s.adminToken), .notFound, "not_found")
            expectProblem(try await app.call(.get, "/api/v1/installs/\(s.installID)/commands?since=yesterday", token: s.adminToken), .unprocessableContent, "invalid_request")
        }
    }

    /// Every row of CONTRACT §4's error table, produced over real HTTP.
    @Test(arguments: TestEngines.all)
    func everyErrorOfTheContractTable(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins, commandTimeout: .milliseconds(600)) { app in
            let s = try await app.commandSender()
            let install = s.installID
            func expectCode(_ answer: Answer, _ status: HTTPResponse.Status, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(answer.status == status, "\(answer.text)", sourceLocation: sourceLocation)
                #expect(answer.json["code"] as? String == code, "\(answer.text)", sourceLocation: sourceLocation)
                #expect(answer.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
                // Every answer carries the rate-limit headers: the install's, or before
                // authentication the caller address's allowance for refusals.
                for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    #expect(answer.headers[HTTPField.Name(name)!] != nil, "\(code) lacks \(name)", sourceLocation: sourceLocation)
                }
            }
            // 400
            var (h, b) = try s.sign(["install_id": install, "command": "ping"])
            expectCode(try await app.send(s.headers(id: "m1", timestamp: Int(Date().timeIntervalSince1970), body: "{not json", secret: s.secret), "{not json"), .badRequest, "malformed_json")
            var noID = h; noID[HTTPField.Name("webhook-id")!] = nil
            expectCode(try await app.send(noID, b), .badRequest, "missing_header")
            var noSig = h; noSig[HTTPField.Name("webhook-signature")!] = nil
            expectCode(try await app.send(noSig, b), .badRequest, "missing_header")
            var badID = h; badID[HTTPField.Name("webhook-id")!] = "has space"
            expectCode(try await app.send(badID, b), .badRequest, "missing_header")
            // Whole seconds in digits only: a sign, a fraction or an exponent is refused before the signature.
            for form in ["+\(Int(Date().timeIntervalSince1970))", "\(Int(Date().timeIntervalSince1970)).0", "-1", "1e9"] {
                var odd = h; odd[HTTPField.Name("webhook-timestamp")!] = form
                expectCode(try await app.send(odd, b), .badRequest, "missing_header")
            }
            // 401
            expectCode(try await app.send(h, b.replacingOccurrences(of: "ping", with: "pong")), .unauthorized, "invalid_signature")
            (h, b) = try s.sign(["install_id": install, "command": "ping"], secret: "whsec_" + Data(repeating: 1, count: 32).base64EncodedString())
            expectCode(try await app.send(h, b), .unauthorized, "invalid_signature")
            (h, b) = try s.sign(["install_id": install, "command": "ping"], timestamp: Int(Date().timeIntervalSince1970) - 301)
            expectCode(try await app.send(h, b), .unauthorized, "timestamp_out_of_window")
            (h, b) = try s.sign(["install_id": install, "command": "ping"], timestamp: Int(Date().timeIntervalSince1970) + 400)
            expectCode(try await app.send(h, b), .unauthorized, "timestamp_out_of_window")
            // An install that does not exist names no credential: 401.
            (h, b) = try s.sign(["install_id": "ins_01jdnothere00000000000000", "command": "ping"])
            expectCode(try await app.send(h, b), .unauthorized, "invalid_signature")
            (h, b) = try s.sign(["command": "ping"])
            expectCode(try await app.send(h, b), .unauthorized, "invalid_signature")
            // 404
            (h, b) = try s.sign(["install_id": install, "command": "teleport"])
            expectCode(try await app.send(h, b), .notFound, "unknown_command")
            // 403
            (h, b) = try s.sign(["install_id": install, "command": "install.config"])
            let scope = try await app.send(h, b)
            expectCode(scope, .forbidden, "scope_missing")
            #expect((scope.json["detail"] as? String)?.contains("config:read") == true)
            // 422
            (h, b) = try s.sign(["install_id": install, "command": "probe.count", "args": ["tag": 5]])
            let args = try await app.send(h, b)
            expectCode(args, .unprocessableContent, "invalid_args")
            #expect((args.json["detail"] as? String)?.contains("args.tag") == true)
            (h, b) = try s.sign(["install_id": install, "command": "probe.count", "args": ["tag": "x", "extra": 1]])
            expectCode(try await app.send(h, b), .unprocessableContent, "invalid_args")
            // 409 conflict: same id, other body.
            let id = "msg_conflict"
            (h, b) = try s.sign(["install_id": install, "command": "ping"], id: id)
            #expect(try await app.send(h, b).status == .ok)
            (h, b) = try s.sign(["install_id": install, "command": "ping", "args": [:]], id: id)
            expectCode(try await app.send(h, b), .conflict, "idempotency_conflict")
            // 409 in progress: a slow command and its duplicate.
            // Whichever arrives second (the machine decides) finds the first still running.
            let (slowHeaders, slowBody) = try s.sign(["install_id": install, "command": "probe.count", "args": ["tag": "slow", "ms": 250]], id: "msg_slow")
            async let one = app.sendConcurrently(slowHeaders, slowBody)
            try await Task.sleep(for: .milliseconds(80))
            let two = try await app.sendConcurrently(slowHeaders, slowBody)
            let pair = [try await one, two]
            #expect(pair.filter { $0.status == .ok }.count == 1, "\(pair.map(\.text))")
            let busy = try #require(pair.first { $0.status != .ok })
            expectCode(busy, .conflict, "idempotency_in_progress")
            // 413
            let huge = "{\"install_id\": \"\(install)\", \"command\": \"ping\", \"args\": {\"x\": \"" + String(repeating: "a", count: 256 * 1024) + "\"}}"
            expectCode(try await app.send(s.headers(id: "m-big", timestamp: Int(Date().timeIntervalSince1970), body: huge, secret: s.secret), huge), .contentTooLarge, "payload_too_large")
            // 500 / 504 / a plugin's own error
            (h, b) = try s.sign(["install_id": install, "command": "probe.crash"])
            let crash = try await app.send(h, b)
            expectCode(crash, .internalServerError, "handler_failed")
            #expect(!crash.text.contains("Boom"))
            (h, b) = try s.sign(["install_id": install, "command": "probe.hang"])
            expectCode(try await app.send(h, b), .gatewayTimeout, "handler_timeout")
            (h, b) = try s.sign(["install_id": install, "command": "probe.fail"])
            expectCode(try await app.send(h, b), .notFound, "not_found")
            // 429
            // One command every 20 s after a burst of 2: five in a row meet a 429 however slowly
            // a loaded machine sends them (at 1 a second, the suite run in parallel once refilled
            // the bucket between them).
            #expect(try await app.call(.put, "/api/v1/installs/\(install)/rate_limit", token: app.operatorToken, json: ["per_second": 0.05, "burst": 2]).status == .ok)
            expectProblem(try await app.call(.put, "/api/v1/installs/\(install)/rate_limit", token: s.adminToken, json: ["per_second": 1, "burst": 2]), .forbidden, "forbidden")
            var limited: Answer?
            for i in 0 ..< 5 {
                (h, b) = try s.sign(["install_id": install, "command": "ping"], id: "msg_rate_\(i)")
                let a = try await app.send(h, b)
                if a.status == .tooManyRequests { limited = a; break }
            }
            let rate = try #require(limited)
            expectCode(rate, .tooManyRequests, "rate_limited")
            #expect(Int(rate.headers[HTTPField.Name("Retry-After")!] ?? "") ?? 0 >= 1)
            #expect(rate.headers[HTTPField.Name("RateLimit-Remaining")!] == "0")
            // 403 inactive: disable the install.
            _ = try await app.call(.put, "/api/v1/installs/\(install)/rate_limit", token: app.operatorToken, json: ["per_second": 1000, "burst": 1000])
            _ = try await app.call(.post, "/api/v1/installs/\(install)/disable", token: s.adminToken)
            (h, b) = try s.sign(["install_id": install, "command": "ping"])
            expectCode(try await app.send(h, b), .forbidden, "install_inactive")
            // 404 unknown_install: correctly signed for an install that was uninstalled.
            _ = try await app.call(.delete, "/api/v1/installs/\(install)", token: s.adminToken)
            (h, b) = try s.sign(["install_id": install, "command": "ping"])
            expectCode(try await app.send(h, b), .notFound, "unknown_install")

            // Authenticated failures are logged row by row; unauthenticated ones are not.
            let outcomes = try await app.runtime.database.read { db in
                try await db.raw("SELECT outcome FROM command_log WHERE install_id = \(bind: install)").all().map { try $0.decode(column: "outcome", as: String.self) }
            }
            for code in ["unknown_install", "unknown_command", "scope_missing", "invalid_args", "idempotency_conflict", "idempotency_in_progress",
                         "handler_failed", "handler_timeout", "rate_limited", "install_inactive", "succeeded"] {
                #expect(outcomes.contains(code), "no log row with outcome \(code)")
            }
            for code in ["invalid_signature", "timestamp_out_of_window", "malformed_json", "missing_header", "payload_too_large"] {
                #expect(!outcomes.contains(code))
            }
        }
    }

    /// Bodies with fields of the wrong kind are judged at the stage the contract's order says:
    /// not an object 400 (unauthenticated), an install_id that is not a string 401 (names no
    /// credential), a command that is not a string 404 naming no command, args not an object
    /// 422, args null as if absent.
    @Test(arguments: TestEngines.all)
    func oddBodiesAreJudgedAtTheirStage(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let install = s.installID
            func send(_ text: String) async throws -> Answer {
                try await app.send(s.headers(id: "msg_" + UUID().uuidString, timestamp: Int(Date().timeIntervalSince1970), body: text, secret: s.secret), text)
            }
            for text in ["[]", "\"\(install)\"", "null", "42", "{\"install_id\": \"\(install)\", \"command\": \"ping\"} {}"] {
                let answer = try await send(text)
                expectProblem(answer, .badRequest, "malformed_json")
                #expect(answer.json["detail"] as? String == "The body must be a JSON object with install_id, command and args.")
            }
            for text in [#"{"install_id": 5, "command": "ping"}"#, "{\"install_id\": [\"\(install)\"], \"command\": \"ping\"}", #"{"install_id": null}"#] {
                let answer = try await send(text)
                expectProblem(answer, .unauthorized, "invalid_signature")
                #expect((answer.json["detail"] as? String)?.contains("names no install") == true, "\(answer.text)")
            }
            for command in ["5", "null", "{\"name\": \"ping\"}"] {
                let answer = try await send("{\"install_id\": \"\(install)\", \"command\": \(command)}")
                expectProblem(answer, .notFound, "unknown_command")
                #expect(answer.json["detail"] as? String == "The body names no `command`.")
            }
            for args in ["[1]", "\"x\"", "true"] {
                let answer = try await send("{\"install_id\": \"\(install)\", \"command\": \"ping\", \"args\": \(args)}")
                expectProblem(answer, .unprocessableContent, "invalid_args")
                #expect(answer.json["detail"] as? String == "`args` must be an object")
            }
            let ping = try await send("{\"install_id\": \"\(install)\", \"command\": \"ping\", \"args\": null}")
            #expect(ping.status == .ok && (ping.json["result"] as? [String: Any])?["pong"] as? Bool == true, "\(ping.text)")
            // The authenticated ones are logged; a command that is not a string as an empty name.
            let rows = try await app.runtime.database.read { db in
                try await db.raw("SELECT command, outcome FROM command_log WHERE install_id = \(bind: install)").all()
                    .map { (try $0.decode(column: "command", as: String.self), try $0.decode(column: "outcome", as: String.self)) }
            }
            #expect(rows.filter { $0 == ("", "unknown_command") }.count == 3)
            #expect(rows.filter { $0 == ("ping", "invalid_args") }.count == 3)
            #expect(rows.filter { $0 == ("ping", "succeeded") }.count == 1)
            #expect(rows.count == 7)
        }
    }

    @Test(arguments: TestEngines.all)
    func idempotentReplaysAndFiftyConcurrentDuplicates(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let tag = "dup-" + UUID().uuidString
            let (h, b) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": tag, "ms": 150]], id: "msg_dup")
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0 ..< 50 { group.addTask { try await app.sendConcurrently(h, b) } }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(ProbePlugin.calls.withLock { $0[tag] } == 1)
            // Really concurrent: most duplicates arrived while the first was running.
            #expect(answers.filter { $0.status == .conflict }.count >= 10)
            let ok = answers.filter { $0.status == .ok }
            #expect(!ok.isEmpty)
            #expect(Set(ok.map(\.text)).count == 1)
            for a in answers where a.status != .ok {
                #expect(a.status == .conflict && a.json["code"] as? String == "idempotency_in_progress", "\(a.status) \(a.text)")
            }
            // Later duplicates replay the stored answer; the handler still ran once.
            let replay = try await app.send(h, b)
            #expect(replay.status == .ok)
            #expect(replay.text == ok.first?.text)
            #expect(replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(ProbePlugin.calls.withLock { $0[tag] } == 1)
        }
    }

    /// CONTRACT §4: a key is bound to its body from its first authenticated use. A refusal
    /// before the handler keeps no answer (the same body is judged again, so a retry after the
    /// limit or a fix passes), but another body under the key is an `idempotency_conflict`; once
    /// the handler ran, its answer replaces the unanswered record and is replayed.
    @Test(arguments: TestEngines.all)
    func aKeyIsBoundToItsBodyFromItsFirstAuthenticatedUse(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let replayed = HTTPField.Name("Idempotent-Replayed")!
            // Refused args, twice: judged both times, nothing replayed.
            var (h, b) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": 5]], id: "msg_bound_args")
            for _ in 0 ..< 2 {
                let refused = try await app.send(h, b)
                #expect(refused.status == .unprocessableContent && refused.json["code"] as? String == "invalid_args", "\(refused.text)")
                #expect(refused.headers[replayed] == nil)
            }
            (h, b) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": "fixed"]], id: "msg_bound_args")
            let other = try await app.send(h, b)
            #expect(other.status == .conflict && other.json["code"] as? String == "idempotency_conflict", "\(other.text)")

            // Rate limited, then the same body once the limit allows: it runs, and is replayed after.
            // One request in 20 s: the one token is spent below and none comes back during the
            // test, however slow the machine. The requests above may still owe a moment of the
            // plan's own rate (a new limit keeps up to one burst of debt): the spend waits it out
            // (a 429 keeps nothing of its key).
            #expect(try await app.call(.put, "/api/v1/installs/\(s.installID)/rate_limit", token: app.operatorToken,
                                       json: ["per_second": 0.05, "burst": 1]).status == .ok)
            let tag = "bound-" + UUID().uuidString
            (h, b) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": "spend"]], id: "msg_bound_spend")
            var spent = try await app.send(h, b)
            for _ in 0 ..< 50 where spent.status == .tooManyRequests {
                try await Task.sleep(for: .milliseconds(100))
                spent = try await app.send(h, b)
            }
            #expect(spent.status == .ok, "\(spent.status) \(spent.text)")
            let (lh, lb) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": tag]], id: "msg_bound_limited")
            let limited = try await app.send(lh, lb)
            #expect(limited.status == .tooManyRequests && limited.json["code"] as? String == "rate_limited", "\(limited.text)")
            #expect(try await app.call(.put, "/api/v1/installs/\(s.installID)/rate_limit", token: app.operatorToken,
                                       json: ["per_second": 1000, "burst": 1000]).status == .ok)
            // A raised limit counts from now: at most one burst of it (1 s here) is owed, not the old one's 2 s.
            try await Task.sleep(for: .milliseconds(1100))
            let (oh, ob) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": tag, "ms": 1]], id: "msg_bound_limited")
            #expect(try await app.send(oh, ob).json["code"] as? String == "idempotency_conflict")
            let (rh, rb) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": tag]], id: "msg_bound_limited")
            #expect(rb == lb)
            let ran = try await app.send(rh, rb)
            #expect(ran.status == .ok, "\(ran.text)")
            #expect(ran.headers[replayed] == nil)
            let again = try await app.send(rh, rb)
            #expect(again.status == .ok && again.text == ran.text)
            #expect(again.headers[replayed] == "true")
            #expect(ProbePlugin.calls.withLock { $0[tag] } == 1)
        }
    }

    /// Refusals before authentication are limited per caller address: past the allowance they
    /// are 429 with Retry-After, while a correctly signed command from the same address passes.
    @Test func refusalsBeforeAuthenticationAreLimitedPerAddress() async throws {
        try await withApp(.sqlite, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let (h, b) = try s.sign(["install_id": s.installID, "command": "ping"], secret: "whsec_" + Data(repeating: 7, count: 32).base64EncodedString())
            // Sent all at once (faster than the allowance refills): the first `burst` are judged, the rest 429.
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0 ..< app.runtime.gateway.failureLimit.burst + 60 { group.addTask { try await app.sendConcurrently(h, b) } }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            let limited = answers.filter { $0.status == .tooManyRequests }
            #expect(!limited.isEmpty && answers.filter { $0.status == .unauthorized }.count >= app.runtime.gateway.failureLimit.burst)
            #expect(limited.count + answers.filter { $0.status == .unauthorized }.count == answers.count)
            for answer in limited {
                #expect(answer.json["code"] as? String == "rate_limited" && answer.headers[.retryAfter] != nil, "\(answer.text)")
                #expect(answer.headers[HTTPField.Name("RateLimit-Remaining")!] == "0")
            }
            for answer in answers { #expect(answer.headers[HTTPField.Name("RateLimit-Limit")!] == String(app.runtime.gateway.failureLimit.burst)) }
            let (goodHeaders, goodBody) = try s.sign(["install_id": s.installID, "command": "ping"])
            #expect(try await app.send(goodHeaders, goodBody).status == .ok)
        }
    }

    @Test(arguments: TestEngines.all)
    func bothSecretsVerifyDuringARotationAndEd25519Works(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let rotated = try await app.call(.post, "/api/v1/developer/apps/\(s.appKey)/secrets/rotate", token: s.vendorToken, json: ["kind": "command"])
            let newSecret = try #require(rotated.json["secret"] as? String)
            for secret in [s.secret, newSecret] {
                let (h, b) = try s.sign(["install_id": s.installID, "command": "ping"], secret: secret)
                #expect(try await app.send(h, b).status == .ok)
            }
            // Several signatures in one header: any valid one suffices.
            var (h, b) = try s.sign(["install_id": s.installID, "command": "ping"])
            h[HTTPField.Name("webhook-signature")!] = "v1,AAAA v2,xyz " + h[HTTPField.Name("webhook-signature")!]!
            #expect(try await app.send(h, b).status == .ok)
            (h, b) = try s.sign(["install_id": s.installID, "command": "ping"])
            h[HTTPField.Name("webhook-signature")!] = "v1," + String(repeating: "A", count: 44)
            #expect(try await app.send(h, b).status == .unauthorized)
        }
    }
}

@Suite("Client address keys")
struct ClientAddressTests {
    @Test func ipv4ItselfIPv6ByItsSlash64MappedAsIPv4() throws {
        #expect(ClientAddress.key(try SocketAddress(ipAddress: "203.0.113.7", port: 443)) == "203.0.113.7")
        let a = ClientAddress.key(try SocketAddress(ipAddress: "2001:db8:1:2:aaaa::1", port: 443))
        let b = ClientAddress.key(try SocketAddress(ipAddress: "2001:db8:1:2:bbbb::9", port: 80))
        #expect(a == "2001:db8:1:2::/64" && a == b)
        #expect(ClientAddress.key(try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 443)) != a)
        #expect(ClientAddress.key(try SocketAddress(ipAddress: "::ffff:198.51.100.4", port: 443)) == "198.51.100.4")
        #expect(ClientAddress.key(nil) == "local")
    }
}
