import Foundation
import HTTPTypes
import HummingbirdTesting
import MercatoCore
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// The gateway caches per-install facts; every change must still count on the next command,
/// whether it was made through this node's API or straight in storage (as another node would).
@Suite("Gateway cache invalidation")
struct GatewayCacheTests {
    static let plugins = GatewayTests.plugins

    func ping(_ app: AppHarness, _ s: CommandSender, secret: String? = nil, at timestamp: Int = Int(Date().timeIntervalSince1970)) async throws -> Answer {
        let (h, b) = try s.sign(["install_id": s.installID, "command": "ping"], timestamp: timestamp, secret: secret)
        return try await app.send(h, b)
    }

    @Test(arguments: TestEngines.all)
    func disableEnableAndUninstallCountOnTheNextCommand(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            #expect(try await ping(app, s).status == .ok)          // cached now
            #expect(try await ping(app, s).status == .ok)
            #expect(try await app.call(.post, "/api/v1/installs/\(s.installID)/disable", token: s.adminToken).status == .ok)
            let disabled = try await ping(app, s)
            #expect(disabled.status == .forbidden)
            #expect(disabled.json["code"] as? String == "install_inactive")
            #expect(try await app.call(.post, "/api/v1/installs/\(s.installID)/enable", token: s.adminToken).status == .ok)
            #expect(try await ping(app, s).status == .ok)
            #expect(try await app.call(.delete, "/api/v1/installs/\(s.installID)", token: s.adminToken).status == .ok)
            let gone = try await ping(app, s)
            #expect(gone.status == .notFound)
            #expect(gone.json["code"] as? String == "unknown_install")
        }
    }

    /// Another node's change reaches this node through storage only: no in-process signal.
    @Test(arguments: TestEngines.all)
    func aChangeMadeDirectlyInStorageCountsOnTheNextCommand(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            #expect(try await ping(app, s).status == .ok)
            let install = s.installID
            // Same millisecond as the install's last change: the status itself is compared.
            try await app.runtime.database.transaction { db in
                try await db.raw("UPDATE installs SET status = 'disabled' WHERE id = \(bind: install)").run()
            }
            let disabled = try await ping(app, s)
            #expect(disabled.json["code"] as? String == "install_inactive", "\(disabled.text)")
            try await app.runtime.database.transaction { db in
                try await db.raw("UPDATE installs SET status = 'active' WHERE id = \(bind: install)").run()
            }
            #expect(try await ping(app, s).status == .ok)
            // Scopes granted elsewhere: install.info was refused, then runs.
            let (h, b) = try s.sign(["install_id": install, "command": "install.config"])
            #expect(try await app.send(h, b).json["code"] as? String == "scope_missing")
            try await app.runtime.database.transaction { db in
                try await db.raw("UPDATE installs SET scopes = '[\"config:read\",\"install:read\",\"probe:use\"]' WHERE id = \(bind: install)").run()
            }
            let (h2, b2) = try s.sign(["install_id": install, "command": "install.config"])
            let config = try await app.send(h2, b2)
            #expect(config.status == .ok, "\(config.text)")
            // Uninstalled elsewhere.
            try await app.runtime.database.transaction { db in
                try await db.raw("UPDATE installs SET status = 'uninstalled', removed_at = 1 WHERE id = \(bind: install)").run()
            }
            #expect(try await ping(app, s).json["code"] as? String == "unknown_install")
        }
    }

    @Test(arguments: TestEngines.all)
    func aRotatedOutSecretStopsWhenItsOverlapEndsAndANewOneWorksAtOnce(engine: StorageEngine) async throws {
        let clock = ManualClock(Date())
        try await withApp(engine, mode: .live, clock: clock.wallClock, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            func now() -> Int { Int(clock.wallClock.now().timeIntervalSince1970) }
            #expect(try await ping(app, s, at: now()).status == .ok)                      // old secret cached
            let rotated = try await app.call(.post, "/api/v1/developer/apps/\(s.appKey)/secrets/rotate", token: s.vendorToken, json: ["kind": "command"])
            let second = try #require(rotated.json["secret"] as? String)
            #expect(try await ping(app, s, secret: second, at: now()).status == .ok)      // the new one at once
            #expect(try await ping(app, s, at: now()).status == .ok)                      // the old one during the overlap
            clock.advance(by: 24 * 3600 + 1)
            let late = try await ping(app, s, at: now())
            #expect(late.status == .unauthorized, "\(late.text)")
            #expect(late.json["code"] as? String == "invalid_signature")
            #expect(try await ping(app, s, secret: second, at: now()).status == .ok)
            // A second rotation ends the previous overlap at once: the second secret keeps 24 h,
            // and a third works immediately.
            let again = try await app.call(.post, "/api/v1/developer/apps/\(s.appKey)/secrets/rotate", token: s.vendorToken, json: ["kind": "command"])
            let third = try #require(again.json["secret"] as? String)
            #expect(try await ping(app, s, secret: third, at: now()).status == .ok)
            #expect(try await ping(app, s, secret: second, at: now()).status == .ok)
            let third2 = try await app.call(.post, "/api/v1/developer/apps/\(s.appKey)/secrets/rotate", token: s.vendorToken, json: ["kind": "command"])
            let fourth = try #require(third2.json["secret"] as? String)
            // `second` was in an overlap: the new rotation ended it now.
            #expect(try await ping(app, s, secret: second, at: now()).status == .unauthorized)
            #expect(try await ping(app, s, secret: third, at: now()).status == .ok)
            #expect(try await ping(app, s, secret: fourth, at: now()).status == .ok)
        }
    }

    @Test(arguments: TestEngines.all)
    func aRateLimitOverrideCountsOnTheNextCommand(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: Self.plugins) { app in
            let s = try await app.commandSender()
            let first = try await ping(app, s)
            #expect(first.status == .ok)
            #expect(try await app.call(.put, "/api/v1/installs/\(s.installID)/rate_limit", token: app.operatorToken, json: ["per_second": 0.5, "burst": 7]).status == .ok)
            let next = try await ping(app, s)
            #expect(next.headers[HTTPField.Name("RateLimit-Limit")!] == "7", "\(next.headers)")
        }
    }
}
