// Micro benchmarks of the pieces every signed command goes through (issue 9):
// vault seal/open of 1 KiB, Standard Webhooks verification (HMAC-SHA256 and Ed25519), the
// body hash, the GCRA rate decision, the idempotency reservation in storage, and manifest
// validation. Run: cd bench/micro && swift package --scratch-path .build-micro benchmark
import Benchmark
import CSodiumMicro
import Foundation
import Logging
import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoStorage

/// The SQLite database of the idempotency benchmarks: migrated once in `setup`.
final class Fixture: @unchecked Sendable {
    nonisolated(unsafe) static var database: Database?
    nonisolated(unsafe) static var directory: URL?
    nonisolated(unsafe) static var serial = 0

    static func open() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mercato-micro-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let logger = Logger(label: "micro")
        let db = try await Database.open(.sqlite(path: dir.appendingPathComponent("mercato.sqlite").path), logger: logger)
        _ = try await Schema.runner.migrate(db, logger: logger)
        directory = dir
        database = db
    }

    static func close() async throws {
        await database?.close()
        database = nil
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    static func nextID() -> String {
        serial += 1
        return "msg_micro_\(serial)"
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 10,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )
    _ = sodium_init()

    // MARK: Vault
    let vault = Vault(keyring: Keyring.generate())
    let context = SealContext(org: "org_01jdk0000000000000000000aa", owner: "ins_01jdk0000000000000000000bb", purpose: "config.api_key")
    let kib = [UInt8](repeating: 0x61, count: 1024)
    let sealed = try! vault.seal(kib, context: context)
    Benchmark("vault seal 1 KiB") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! vault.seal(kib, context: context)) }
    }
    Benchmark("vault open 1 KiB") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! vault.open(sealed, context: context)) }
    }

    // MARK: Signatures (a ping body, as the gateway sees it)
    let body = Array(#"{"install_id":"ins_01jdk0000000000000000000bb","command":"ping","args":{}}"#.utf8)
    let content = StandardWebhooks.signedContent(id: "msg_2kXh7cYb9Qm1", timestamp: "1795289465", body: body)
    let secret = "whsec_" + Data((0 ..< 32).map { UInt8($0) }).base64EncodedString()
    let otherSecret = "whsec_" + Data((0 ..< 32).map { UInt8(255 - $0) }).base64EncodedString()
    let hmacHeader = StandardWebhooks.sign(content: content, secret: secret)!
    Benchmark("verify v1 HMAC-SHA256, 1 secret") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(StandardWebhooks.verify(header: hmacHeader, content: content, secrets: [secret], publicKey: nil))
        }
    }
    Benchmark("verify v1 HMAC-SHA256, 2 secrets (rotation overlap)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(StandardWebhooks.verify(header: hmacHeader, content: content, secrets: [otherSecret, secret], publicKey: nil))
        }
    }
    var publicKey = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
    var secretKey = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
    crypto_sign_keypair(&publicKey, &secretKey)
    var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
    crypto_sign_detached(&signature, nil, content, UInt64(content.count), secretKey)
    let edHeader = "v1a," + Data(signature).base64EncodedString()
    Benchmark("verify v1a Ed25519") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(StandardWebhooks.verify(header: edHeader, content: content, secrets: [], publicKey: publicKey))
        }
    }
    Benchmark("body sha256 hex (log row)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(Signatures.sha256Hex(body)) }
    }

    // MARK: GCRA
    let limit = RateLimiter.Limit(perSecond: 1_000_000, burst: 1_000_000)
    let oneInstall = RateLimiter()
    Benchmark("GCRA take, 1 install") { benchmark in
        let now = Date().timeIntervalSince1970
        for i in benchmark.scaledIterations { blackHole(oneInstall.take("ins_01jdk0000000000000000000bb", limit: limit, now: now + Double(i) * 1e-6)) }
    }
    let manyInstalls = RateLimiter()
    let keys = (0 ..< 100_000).map { "ins_00" + String(repeating: "0", count: 24 - String($0).count) + String($0) }
    let start = Date().timeIntervalSince1970
    for key in keys { _ = manyInstalls.take(key, limit: limit, now: start) }
    Benchmark("GCRA take, 100,000 installs") { benchmark in
        var cursor = 0
        for _ in benchmark.scaledIterations {
            cursor = (cursor &+ 7919) % keys.count
            blackHole(manyInstalls.take(keys[cursor], limit: limit, now: start + 1))
        }
    }

    // MARK: Idempotency reservation (storage side: the lookup every new command makes, and the
    // record the group commit writes; SQLite, synchronous=FULL as the server runs it)
    let app = "app_01jdk0000000000000000000cc"
    Benchmark("idempotency lookup, miss (SQLite read)", closure: { benchmark async in
        for _ in benchmark.scaledIterations {
            let id = Fixture.nextID()
            blackHole(try! await Fixture.database!.read { try await CommandStore.idempotency(app: app, webhookID: id, on: $0) })
        }
    }, setup: { try await Fixture.open() }, teardown: { try await Fixture.close() })
    Benchmark("idempotency insert, 1 per transaction (SQLite, fsync)", closure: { benchmark async in
        for _ in benchmark.scaledIterations {
            let record = IdempotencyRecord(appId: app, webhookId: Fixture.nextID(), bodySha256: String(repeating: "a", count: 64), httpStatus: 200,
                                           response: #"{"command":"ping","id":"cmd_x","result":{"pong":true},"status":"succeeded"}"#, createdAt: 1)
            blackHole(try! await Fixture.database!.transaction { try await CommandStore.insertIdempotency(record, on: $0) })
        }
    }, setup: { try await Fixture.open() }, teardown: { try await Fixture.close() })
    Benchmark("idempotency insert, 512 per transaction (SQLite), per batch", configuration: .init(maxIterations: 2000), closure: { benchmark async in
        for _ in benchmark.scaledIterations {
            let records = (0 ..< 512).map { _ in
                IdempotencyRecord(appId: app, webhookId: Fixture.nextID(), bodySha256: String(repeating: "a", count: 64), httpStatus: 200,
                                  response: #"{"command":"ping","id":"cmd_x","result":{"pong":true},"status":"succeeded"}"#, createdAt: 1)
            }
            try! await Fixture.database!.transaction { db in
                for record in records { try await CommandStore.insertIdempotency(record, on: db) }
            }
        }
    }, setup: { try await Fixture.open() }, teardown: { try await Fixture.close() })

    // MARK: Manifest validation
    let capabilities = try! Capabilities(manifests: [
        PluginManifest(id: "micro", version: "1.0.0",
                       scopes: ["install:read", "config:read", "tasks:read", "kv:read", "kv:write", "connections:token"].map { ScopeDefinition($0, summary: $0) },
                       emits: ["task.created", "task.updated", "task.completed"]),
    ])
    let validator = ManifestValidator(capabilities: capabilities, providers: ["slack"])
    let small = try! JSONDecoder().decode(JSONValue.self, from: Data(#"""
        {"key": "bench-app", "name": "Bench App", "version": "1.0.0", "description": "The app bench/run loads Mercato with.",
         "developer": {"name": "Bench"}, "scopes": ["kv:write"], "command_signing": {"type": "hmac"},
         "config": [{"key": "api_key", "label": "API key", "type": "secret", "required": true},
                    {"key": "channel", "label": "Channel", "type": "string", "required": false, "default": "#general"}]}
        """#.utf8))
    Benchmark("manifest validate, small JSON (2 config fields)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(validator.validate(small)) }
    }
    // The catalog's slack-notify.yaml: 8 config fields, OAuth, events; parsed from YAML as the
    // registry does, then validated.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let yaml = try! Data(contentsOf: root.appendingPathComponent("catalog/apps/slack-notify.yaml"))
    let slack = try! ManifestDocument.parse(yaml, format: .yaml)
    guard case .success = validator.validate(slack) else { fatalError("slack-notify.yaml does not validate against the micro capabilities") }
    Benchmark("manifest validate, slack-notify (8 config fields)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(validator.validate(slack)) }
    }
    Benchmark("manifest parse YAML + validate, slack-notify") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(validator.validate(try! ManifestDocument.parse(yaml, format: .yaml))) }
    }
}
