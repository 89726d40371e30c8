import Foundation
import HTTPTypes
import HummingbirdTesting
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Synchronization
import Testing

/// A plugin whose `installCreated` hook throws its first `failures` calls, then succeeds.
final class FlakyHookPlugin: MercatoPlugin {
    static let manifest = PluginManifest(id: "flaky", version: "1.0.0")
    struct Boom: Error {}
    let failures: Int
    let calls = Mutex(0)
    init(failures: Int) { self.failures = failures }
    func installCreated(_ install: InstallInfo, _ context: HookContext) async throws {
        let n = calls.withLock { $0 += 1; return $0 }
        if n <= failures { throw Boom() }
    }
}

/// Counts `installCreated` calls.
final class CountingHookPlugin: MercatoPlugin {
    static let manifest = PluginManifest(id: "counting", version: "1.0.0")
    let calls = Mutex(0)
    func installCreated(_ install: InstallInfo, _ context: HookContext) async throws { calls.withLock { $0 += 1 } }
}

@Suite("Plugin host: containment, the crash-loop rule, hook retries")
struct PluginHostTests {
    @Test(arguments: TestEngines.all)
    func throwingHangingAndCrashLoopingPluginsAreContained(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: GatewayTests.plugins, commandTimeout: .milliseconds(300), metrics: true) { app in
            let s = try await app.commandSender()
            func run(_ command: String, _ args: [String: Any] = [:]) async throws -> Answer {
                let (h, b) = try s.sign(["install_id": s.installID, "command": command, "args": args])
                return try await app.sendConcurrently(h, b)
            }
            let crashedBefore = Self.counter(try await app.call(.get, "/metrics").text, plugin: "probe", outcome: "crashed")

            // 1: throws. The sender gets 500 handler_failed; other commands go on.
            let crashed = try await run("probe.crash")
            expectProblem(crashed, .internalServerError, "handler_failed")
            // The plugin's line and the host's both name the request.
            let requestID = try #require(crashed.headers[HTTPField.Name("X-Request-Id")!])
            for message in ["probe crashing", "plugin call threw"] {
                let line = try #require(app.logs.all.first { $0.contains("\"msg\":\"\(message)\"") }, "\(message)")
                #expect(line.contains("\"request_id\":\"\(requestID)\""), "\(line)")
            }
            #expect(try await run("ping").status == .ok)
            // 2: hangs past its timeout (ignoring cancellation). Other commands answer meanwhile.
            async let hung = run("probe.hang")
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await run("ping").status == .ok)
            let timedOut = try await hung
            expectProblem(timedOut, .gatewayTimeout, "handler_timeout")
            let hungID = try #require(timedOut.headers[HTTPField.Name("X-Request-Id")!])
            #expect(app.logs.all.contains { $0.contains("\"msg\":\"plugin call timed out\"") && $0.contains("\"request_id\":\"\(hungID)\"") })
            let stillReady = try await app.call(.get, "/readyz")
            #expect(stillReady.json["status"] as? String == "ready")

            // 3: the third failure in 60 minutes disables the plugin.
            expectProblem(try await run("probe.crash"), .internalServerError, "handler_failed")
            let (h, b) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": "after-enable"]])
            let refused = try await app.sendConcurrently(h, b)
            expectProblem(refused, .serviceUnavailable, "plugin_disabled")
            #expect(refused.headers[.retryAfter] == "60")
            #expect(try await run("ping").status == .ok)
            #expect(try await run("install.info").status == .ok)

            // /readyz tells the story without taking the node out of service.
            let ready = try await app.call(.get, "/readyz")
            #expect(ready.status == .ok)
            #expect(ready.json["status"] as? String == "degraded")
            let checks = try #require(ready.json["checks"] as? [String: String])
            #expect(checks["plugin:probe"]?.hasPrefix("disabled: 3 failures in 60 min (last: crashed in handle)") == true, "\(checks)")
            #expect(checks["plugin:kv"] == "ok")
            // ... and so do the metrics.
            let metrics = try await app.call(.get, "/metrics").text
            #expect(Self.counter(metrics, plugin: "probe", outcome: "crashed") >= crashedBefore + 2)
            #expect(Self.counter(metrics, plugin: "probe", outcome: "timeout") >= 1)
            #expect(metrics.contains("mercato_plugin_disabled"))

            // The operator sees it and enables it again; the refused command was not kept, so
            // the same webhook-id now runs.
            expectProblem(try await app.call(.get, "/api/v1/plugins", token: s.adminToken), .forbidden, "forbidden")
            let listed = try await app.call(.get, "/api/v1/plugins", token: app.operatorToken)
            let probe = try #require((listed.json["data"] as? [[String: Any]])?.first { $0["id"] as? String == "probe" })
            #expect(probe["status"] as? String == "disabled")
            #expect(probe["recent_failures"] as? Int == 3)
            let enabled = try await app.call(.post, "/api/v1/plugins/probe/enable", token: app.operatorToken)
            #expect(enabled.json["status"] as? String == "active")
            // A route's own line names its request and caller (the token's id, never the token).
            let enabledID = try #require(enabled.headers[HTTPField.Name("X-Request-Id")!])
            let enabledLine = try #require(app.logs.all.first { $0.contains("\"msg\":\"plugin enabled by the operator\"") })
            #expect(enabledLine.contains("\"request_id\":\"\(enabledID)\""), "\(enabledLine)")
            #expect(enabledLine.contains("\"caller\":\""), "\(enabledLine)")
            #expect(!enabledLine.contains(app.operatorToken))
            expectProblem(try await app.call(.post, "/api/v1/plugins/nope/enable", token: app.operatorToken), .notFound, "not_found")
            let retried = try await app.sendConcurrently(h, b)
            #expect(retried.status == .ok, "\(retried.text)")
            #expect(retried.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            #expect(try await app.call(.get, "/readyz").json["status"] as? String == "ready")
        }
    }

    /// Failures older than the window do not count.
    @Test func failuresOutsideTheWindowAreForgotten() async throws {
        let clock = ManualClock()
        try await withApp(.sqlite, clock: clock.wallClock, plugins: GatewayTests.plugins) { app in
            let s = try await app.commandSender()
            func crash() async throws {
                let (h, b) = try s.sign(["install_id": s.installID, "command": "probe.crash", "args": [:]], timestamp: Int(clock.wallClock.millis / 1000))
                expectProblem(try await app.send(h, b), .internalServerError, "handler_failed")
            }
            try await crash()
            try await crash()
            clock.advance(by: 3601)
            try await crash()
            try await crash()
            #expect(!app.runtime.plugins.isDisabled("probe"))
            try await crash()
            #expect(app.runtime.plugins.isDisabled("probe"))
        }
    }

    /// A failed hook runs again on the backoff schedule, only for the plugin that failed; a
    /// disabled plugin's hook waits (without using up attempts) until it is enabled.
    @Test(arguments: TestEngines.all)
    func failedHooksAreRetriedAndDisabledOnesWait(engine: StorageEngine) async throws {
        let clock = ManualClock()
        let flaky = FlakyHookPlugin(failures: 3)
        let counting = CountingHookPlugin()
        try await withApp(engine, clock: clock.wallClock, plugins: TestPlugins.all + [flaky, counting]) { app in
            let s = try await app.commandSender(scopes: ["install:read"])
            func pending() async throws -> Int {
                try await app.runtime.database.read { try await HookFeedStore.pendingCount(.events, on: $0) }
            }
            func attempts() async throws -> Int {
                try await app.runtime.database.read { db in
                    try await db.raw("SELECT hooks_attempts FROM outbox_events WHERE install_id = \(bind: s.installID)").first()!.decode(column: "hooks_attempts", as: Int.self)
                }
            }
            try await app.runtime.hooks.dispatchPending()
            #expect(flaky.calls.withLock { $0 } == 1)
            #expect(counting.calls.withLock { $0 } == 1)
            #expect(try await pending() == 1)
            try await app.runtime.hooks.dispatchPending()            // not due yet
            #expect(flaky.calls.withLock { $0 } == 1)
            clock.advance(by: 5)
            try await app.runtime.hooks.dispatchPending()
            #expect(flaky.calls.withLock { $0 } == 2)
            clock.advance(by: 30)
            try await app.runtime.hooks.dispatchPending()            // third failure: disabled
            #expect(flaky.calls.withLock { $0 } == 3)
            #expect(app.runtime.plugins.isDisabled("flaky"))
            #expect(try await attempts() == 3)
            clock.advance(by: 3600)
            try await app.runtime.hooks.dispatchPending()            // skipped while disabled
            #expect(flaky.calls.withLock { $0 } == 3)
            #expect(try await attempts() == 3)
            #expect(try await pending() == 1)
            _ = try await app.call(.post, "/api/v1/plugins/flaky/enable", token: app.operatorToken)
            clock.advance(by: 61)
            try await app.runtime.hooks.dispatchPending()
            #expect(flaky.calls.withLock { $0 } == 4)
            #expect(try await pending() == 0)
            // The other plugins ran the hook once in all.
            #expect(counting.calls.withLock { $0 } == 1)
        }
    }

    /// `mercato_plugin_calls_total{...}` for `plugin` and `outcome` with hook `handle`, 0 when absent.
    static func counter(_ metrics: String, plugin: String, outcome: String) -> Int {
        for line in metrics.split(separator: "\n") where line.hasPrefix("mercato_plugin_calls_total{")
            && line.contains("plugin=\"\(plugin)\"") && line.contains("outcome=\"\(outcome)\"") && line.contains("hook=\"handle\"") {
            return Int(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }
}
