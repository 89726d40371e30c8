import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage
import MercatoWeb
import MercatoTestSupport
import Metrics
import NIOCore
import Prometheus
import Synchronization
import Testing

/// Every log line the app wrote during a test.
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func logger() -> Logger {
        Logger(label: "mercato.test") { label in JSONLogHandler(label: label, level: .debug, sink: { line in self.lines.withLock { $0.append(line) } }) }
    }
}

/// A test's view of one running app: its client, runtime, logs and an operator token.
struct AppHarness {
    let client: any TestClientProtocol
    let runtime: MercatoRuntime
    let logs: LogCapture
    let operatorToken: String
    let engine: StorageEngine
}

/// Runs `body` against the whole HTTP application on a fresh database of `engine`.
func withApp(_ engine: StorageEngine, mode: TestingSetup = .router, clock: WallClock = .system,
             plugins: [any MercatoPlugin] = TestPlugins.all, commandTimeout: Duration = .seconds(10), metrics: Bool = false,
             pages: Bool = false, environment: [String: String] = [:], deadlines: StorageDeadlines? = nil,
             _ body: @escaping @Sendable (AppHarness) async throws -> Void) async throws {
    let operatorToken = "op-" + UUID().uuidString + UUID().uuidString
    // The runtime (services, plugins) and the HTTP layer write to the same capture, so tests
    // that search the logs for secrets see both.
    let logs = LogCapture()
    try await withTestRuntime(engine, operatorToken: operatorToken, clock: clock, plugins: plugins, commandTimeout: commandTimeout,
                              logger: logs.logger(), environment: environment, deadlines: deadlines) { runtime async throws in
        let web = pages ? try WebPages(runtime: runtime, logger: logs.logger()) : nil
        let app = buildApplication(runtime: runtime, metrics: metrics ? TestMetrics.registry : nil, logger: logs.logger(), pages: web?.register)
        try await app.test(mode) { client in
            try await body(AppHarness(client: client, runtime: runtime, logs: logs, operatorToken: operatorToken, engine: engine))
        }
    }
}

/// Runs `body` against `count` nodes (each the whole HTTP application over real loopback, with
/// its own connections) sharing one fresh database of `engine`.
func withNodes(_ engine: StorageEngine, count: Int, plugins: [any MercatoPlugin] = TestPlugins.all, commandTimeout: Duration = .seconds(10),
               _ body: @escaping @Sendable ([AppHarness]) async throws -> Void) async throws {
    let operatorToken = "op-" + UUID().uuidString + UUID().uuidString
    let logs = LogCapture()
    try await withTestNodes(engine, count: count, operatorToken: operatorToken, plugins: plugins, commandTimeout: commandTimeout,
                            logger: logs.logger()) { runtimes async throws in
        @Sendable func serve(_ index: Int, _ started: [AppHarness]) async throws {
            guard index < runtimes.count else { return try await body(started) }
            let runtime = runtimes[index]
            let app = buildApplication(runtime: runtime, metrics: nil, logger: logs.logger())
            try await app.test(.live) { client in
                try await serve(index + 1, started + [AppHarness(client: client, runtime: runtime, logs: logs, operatorToken: operatorToken, engine: engine)])
            }
        }
        try await serve(0, [])
    }
}

/// One Prometheus registry for the test process (the metrics system is bootstrapped once).
/// Tests run side by side, so they read counters as lower bounds.
enum TestMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

/// A decoded answer.
struct Answer {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let text: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
}

extension AppHarness {
    @discardableResult
    func call(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: Any? = nil, raw: String? = nil,
              contentType: String? = "application/json", headers extra: HTTPFields = [:]) async throws -> Answer {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        if body != nil, let contentType { headers[.contentType] = contentType }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            Answer(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }

    /// Creates an org as the operator and an owner token in it.
    func makeOrg(plan: String = "free", name: String = "Acme") async throws -> (org: String, owner: String) {
        let org = try await call(.post, "/api/v1/orgs", token: operatorToken, json: ["name": name, "plan": plan])
        #expect(org.status == .created)
        let id = org.json["id"] as! String
        let token = try await call(.post, "/api/v1/orgs/\(id)/tokens", token: operatorToken, json: ["name": "owner", "role": "owner"])
        #expect(token.status == .created)
        return (id, token.json["token"] as! String)
    }

    /// Registers `manifest` (JSON) with a developer token; answers the 201 body.
    func registerApp(_ manifest: [String: Any], token: String) async throws -> [String: Any] {
        let answer = try await call(.post, "/api/v1/developer/apps", token: token, json: manifest)
        #expect(answer.status == .created, "\(answer.text)")
        return answer.json
    }

    func makeToken(org: String, role: String, by token: String) async throws -> String {
        let answer = try await call(.post, "/api/v1/orgs/\(org)/tokens", token: token, json: ["name": role, "role": role])
        #expect(answer.status == .created)
        return answer.json["token"] as! String
    }
}

/// Checks an answer is Problem Details with `status` and `code`, and its request id matches the header.
func expectProblem(_ answer: Answer, _ status: HTTPResponse.Status, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(answer.status == status, "\(answer.text)", sourceLocation: sourceLocation)
    #expect(answer.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
    let json = answer.json
    #expect(json["code"] as? String == code, "\(answer.text)", sourceLocation: sourceLocation)
    #expect(json["status"] as? Int == Int(status.code), sourceLocation: sourceLocation)
    #expect((json["title"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    #expect((json["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    #expect(json["type"] as? String == "urn:mercato:problem:\(code)", sourceLocation: sourceLocation)
    #expect(json["request_id"] as? String == answer.headers[HTTPField.Name("X-Request-Id")!], sourceLocation: sourceLocation)
}
