import Foundation
import HTTPTypes
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Synchronization
import Testing

/// CONTRACT §12 on two nodes over one PostgreSQL database, each a whole application over loopback.
@Suite("Several nodes on one PostgreSQL")
struct SeveralNodesTests {
    /// Duplicates of one command spread over both nodes while the first copy runs: the handler
    /// runs once; every other copy is told the key is in progress; afterwards both nodes replay
    /// the one answer.
    @Test func aDuplicateRunsOnceWhicheverNodeItReaches() async throws {
        try await withNodes(.postgres, count: 2, plugins: GatewayTests.plugins) { nodes in
            let s = try await nodes[0].commandSender()
            let tag = "nodes-" + UUID().uuidString
            let (h, b) = try s.sign(["install_id": s.installID, "command": "probe.count", "args": ["tag": tag, "ms": 300]])
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for i in 0 ..< 40 { group.addTask { try await nodes[i % 2].sendConcurrently(h, b) } }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(ProbePlugin.calls.withLock { $0[tag] } == 1)
            let ok = answers.filter { $0.status == .ok }
            #expect(ok.count >= 1)
            #expect(Set(ok.map(\.text)).count == 1)
            for a in answers where a.status != .ok {
                #expect(a.status == .conflict && a.json["code"] as? String == "idempotency_in_progress", "\(a.status) \(a.text)")
            }
            for node in nodes {
                let replay = try await node.sendConcurrently(h, b)
                #expect(replay.status == .ok, "\(replay.text)")
                #expect(replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
                #expect(replay.text == ok.first?.text)
            }
            #expect(ProbePlugin.calls.withLock { $0[tag] } == 1)
        }
    }

    /// A node claims a command's key in the statement that checks it, before it knows whether
    /// it will answer: a refusal that keeps nothing of the key (an inactive install, a secret
    /// rotated out since the node cached it) gives the key back at once, so the next copy runs
    /// on any node instead of waiting out the claim's lease as "in progress".
    @Test func aRefusalThatKeepsNothingGivesItsKeyBackOnEveryNode() async throws {
        try await withNodes(.postgres, count: 2, plugins: GatewayTests.plugins) { nodes in
            let s = try await nodes[0].commandSender()
            let db = nodes[0].runtime.database
            let appID = try #require(try await db.read {
                try await $0.raw("SELECT app_id FROM installs WHERE id = \(bind: s.installID)").first()?.decode(column: "app_id", as: String.self)
            })
            func kept(_ webhook: String) async throws -> IdempotencyRecord? {
                try await db.read { try await CommandStore.idempotency(app: appID, webhookID: webhook, on: $0) }
            }
            let first = try s.sign(["install_id": s.installID, "command": "ping"])
            #expect(try await nodes[0].sendConcurrently(first.0, first.1).status == .ok)   // cached on node 0

            // Disabled on node 1: node 0 refuses the command and keeps nothing of its key.
            #expect(try await nodes[1].call(.post, "/api/v1/installs/\(s.installID)/disable", token: s.adminToken).status == .ok)
            let (h, b) = try s.sign(["install_id": s.installID, "command": "ping"], id: "msg_inactive")
            let inactive = try await nodes[0].sendConcurrently(h, b)
            #expect(inactive.status == .forbidden && inactive.json["code"] as? String == "install_inactive", "\(inactive.text)")
            #expect(try await kept("msg_inactive") == nil)
            #expect(try await nodes[1].call(.post, "/api/v1/installs/\(s.installID)/enable", token: s.adminToken).status == .ok)
            let retried = try await nodes[1].sendConcurrently(h, b)
            #expect(retried.status == .ok, "\(retried.text)")

            // Two rotations on node 1 end the first secret's overlap; node 0 still holds it
            // cached, claims the key, finds the secret gone and gives the key back.
            var secret = s.secret
            for _ in 0 ..< 2 {
                let rotated = try await nodes[1].call(.post, "/api/v1/developer/apps/\(s.appKey)/secrets/rotate", token: s.vendorToken, json: ["kind": "command"])
                secret = try #require(rotated.json["secret"] as? String)
            }
            let stale = try s.sign(["install_id": s.installID, "command": "ping"], id: "msg_rotated")
            let refused = try await nodes[0].sendConcurrently(stale.0, stale.1)
            #expect(refused.status == .unauthorized && refused.json["code"] as? String == "invalid_signature", "\(refused.text)")
            #expect(try await kept("msg_rotated") == nil)
            let current = try s.sign(["install_id": s.installID, "command": "ping"], id: "msg_rotated", secret: secret)
            for node in nodes {
                let answer = try await node.sendConcurrently(current.0, current.1)
                #expect(answer.status == .ok, "\(answer.text)")
            }
            #expect(try await kept("msg_rotated")?.httpStatus == 200)
        }
    }

    /// An install's rate is one allowance across the nodes, not one per node: a burst of 10
    /// (refilling at 2/s) offered 40 distinct commands over two nodes at once lets about 10 pass.
    @Test func anInstallsRateHoldsAcrossNodes() async throws {
        try await withNodes(.postgres, count: 2, plugins: GatewayTests.plugins) { nodes in
            let s = try await nodes[0].commandSender()
            let set = try await nodes[1].call(.put, "/api/v1/installs/\(s.installID)/rate_limit", token: nodes[1].operatorToken,
                                              json: ["per_second": 2, "burst": 10])
            #expect(set.status == .ok, "\(set.text)")
            let started = ContinuousClock.now
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for i in 0 ..< 40 {
                    let (h, b) = try s.sign(["install_id": s.installID, "command": "ping"])
                    group.addTask { try await nodes[i % 2].sendConcurrently(h, b) }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            let seconds = Double((ContinuousClock.now - started).components.seconds) + 1
            let passed = answers.filter { $0.status == .ok }.count
            // One node alone would let 10 through, two nodes with their own state 20.
            #expect(passed >= 10 && Double(passed) <= 10 + 2 * seconds, "\(passed) passed in under \(seconds) s")
            for a in answers where a.status != .ok {
                #expect(a.status == .tooManyRequests && a.json["code"] as? String == "rate_limited", "\(a.status) \(a.text)")
            }
        }
    }

    /// The allowance of the plugins' public routes (inbound provider webhooks) is one per key
    /// across the nodes: two nodes taking from a burst of 10 that hardly refills let 10 through.
    @Test func anInboundAllowanceHoldsAcrossNodes() async throws {
        try await withTestNodes(.postgres, count: 2) { runtimes in
            let allowances = runtimes.map { RateAllowance(database: $0.database) }
            let limit = RateLimiter.Limit(perSecond: 0.001, burst: 10)
            let now = Date().timeIntervalSince1970
            let allowed = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0 ..< 40 {
                    group.addTask { try await allowances[i % 2].take("inbound:ins_shared", limit: limit, now: now).allowed }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(allowed == 10)
            // Another key has its own allowance.
            #expect(try await allowances[1].take("inbound:ins_other", limit: limit, now: now).allowed)
        }
    }

    /// Failed sign-ins are counted in storage: five failures for one email spread over two nodes
    /// throttle the sixth attempt on either node, whatever the password.
    @Test func signInFailuresAreCountedAcrossNodes() async throws {
        try await withTestNodes(.postgres, count: 2) { runtimes in
            let email = "nobody-\(UUID().uuidString.prefix(8))@example.com"
            for i in 0 ..< 5 {
                await #expect(throws: APIError.self) {
                    _ = try await runtimes[i % 2].people.signIn(email: email, password: "wrong password \(i)", clientKey: "198.51.100.\(i)")
                }
            }
            for runtime in runtimes {
                do {
                    _ = try await runtime.people.signIn(email: email, password: "still wrong", clientKey: "198.51.100.9")
                    Issue.record("the sixth attempt was not throttled")
                } catch let error as APIError {
                    #expect(error.status == 429 && error.code == "rate_limited", "\(error.status) \(error.code)")
                    #expect(error.headers["Retry-After"] != nil)
                }
            }
            // Nothing of the email or the address is stored in clear.
            let keys = try await runtimes[0].database.read { db in
                try await db.raw("SELECT key FROM sign_in_failures").all().map { try $0.decode(column: "key", as: String.self) }
            }
            #expect(!keys.isEmpty && keys.allSatisfy { !$0.contains("example.com") && !$0.contains("198.51.100") })
        }
    }

}
