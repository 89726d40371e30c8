import Foundation
import HTTPTypes
import MercatoCore
import MercatoHooks
import MercatoStorage
import MercatoTestSupport
import SQLKit
import Testing

/// A minimal valid manifest.
func manifest(_ key: String, version: String = "1.0.0", name: String? = nil, description: String = "Does useful things.",
              plan: String = "free", categories: [String] = ["productivity"], signing: [String: Any] = ["type": "hmac"]) -> [String: Any] {
    [
        "key": key, "name": name ?? key.capitalized, "version": version, "description": description,
        "developer": ["name": "Acme", "email": "dev@acme.example"], "categories": categories, "plan": plan,
        "scopes": ["kv:read"], "events": ["app.installed"], "webhook_url": "https://hooks.acme.example/\(key)",
        "command_signing": signing,
        "config": [["key": "api_key", "label": "API key", "type": "secret", "required": true]],
    ]
}

@Suite("App registry and catalog over HTTP")
struct RegistryTests {
    @Test(arguments: TestEngines.all)
    func registerShowsSecretsOnceAndStoresThemSealed(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let (org, owner) = try await app.makeOrg()
            let dev = try await app.makeToken(org: org, role: "developer", by: owner)
            let body = try await app.registerApp(manifest("acme-notify"), token: dev)
            #expect(body["key"] as? String == "acme-notify")
            #expect(body["status"] as? String == "draft")
            #expect(body["version"] as? String == "1.0.0")
            let secrets = try #require(body["secrets"] as? [String: String])
            let webhook = try #require(secrets["webhook"])
            let command = try #require(secrets["command"])
            #expect(webhook.hasPrefix("whsec_") && command.hasPrefix("whsec_") && webhook != command)
            #expect(Data(base64Encoded: String(webhook.dropFirst(6)))?.count == 32)

            // Later reads never show them.
            let read = try await app.call(.get, "/api/v1/developer/apps/acme-notify", token: dev)
            #expect(read.status == .ok)
            #expect(!read.text.contains(webhook) && !read.text.contains(command))
            #expect((read.json["secrets"] as? [[String: Any]])?.count == 2)
            let list = try await app.call(.get, "/api/v1/developer/apps", token: dev)
            #expect((list.json["data"] as? [[String: Any]])?.count == 1)
            #expect(list.json.keys.contains("next_cursor"))
            // Nothing in the database in clear.
            let dump = try await app.runtime.database.read { db in
                try await db.raw("SELECT ciphertext FROM sealed_values").all().map { try $0.decode(column: "ciphertext", as: String.self) }
            }
            #expect(dump.count == 2)
            for row in dump { #expect(!row.contains("whsec_")) }
            // The registry opens them for verification.
            let appID = try #require(body["id"] as? String)
            #expect(try await app.runtime.registry.verificationSecrets(appID: appID, kind: .command) == [command])
        }
    }

    @Test(arguments: TestEngines.all)
    func ed25519AppsGetNoCommandSecretAndYAMLWorks(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let (_, owner) = try await app.makeOrg()
            let key = "whpk_" + Data((0 ..< 32).map { UInt8($0) }).base64EncodedString()
            let yaml = """
            key: signed-app
            name: Signed App
            version: 0.1.0
            description: Signs commands with Ed25519.
            developer: {name: Acme}
            command_signing: {type: ed25519, public_key: "\(key)"}
            """
            let answer = try await app.call(.post, "/api/v1/developer/apps", token: owner, raw: yaml, contentType: "application/yaml")
            #expect(answer.status == .created, "\(answer.text)")
            let secrets = try #require(answer.json["secrets"] as? [String: String])
            #expect(secrets.keys.sorted() == ["webhook"])
            expectProblem(try await app.call(.post, "/api/v1/developer/apps/signed-app/secrets/rotate", token: owner, json: ["kind": "command"]),
                          .conflict, "command_signing_not_hmac")
            expectProblem(try await app.call(.post, "/api/v1/developer/apps", token: owner, raw: "key: [", contentType: "application/yaml"),
                          .badRequest, "malformed_yaml")
            expectProblem(try await app.call(.post, "/api/v1/developer/apps", token: owner, raw: "key: x", contentType: "text/plain"),
                          .unsupportedMediaType, "unsupported_media_type")
        }
    }

    @Test(arguments: TestEngines.all)
    func aManifestWithFiveMistakesGetsOne422NamingAllFive(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let (_, owner) = try await app.makeOrg()
            var bad = manifest("Bad Key", version: "one")
            bad["colour"] = "blue"
            bad["scopes"] = ["kv:read", "everything:all"]
            bad["webhook_url"] = "http://hooks.acme.example/x"
            let answer = try await app.call(.post, "/api/v1/developer/apps", token: owner, json: bad)
            expectProblem(answer, .unprocessableContent, "invalid_manifest")
            let fields = Set((answer.json["errors"] as? [[String: String]] ?? []).compactMap { $0["field"] })
            #expect(fields == ["key", "version", "colour", "scopes[1]", "webhook_url"])
            for field in fields { #expect((answer.json["detail"] as? String)?.contains("`\(field)`") == true) }
        }
    }

    @Test(arguments: TestEngines.all)
    func versionsPublishingAndPermissions(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let (orgA, ownerA) = try await app.makeOrg(name: "A")
            let (_, ownerB) = try await app.makeOrg(name: "B")
            let memberA = try await app.makeToken(org: orgA, role: "member", by: ownerA)
            _ = try await app.registerApp(manifest("versioned"), token: ownerA)

            expectProblem(try await app.call(.post, "/api/v1/developer/apps", token: memberA, json: manifest("nope-app")), .forbidden, "forbidden")
            expectProblem(try await app.call(.post, "/api/v1/developer/apps", token: app.operatorToken, json: manifest("nope-app")), .forbidden, "forbidden")
            expectProblem(try await app.call(.post, "/api/v1/developer/apps", token: ownerB, json: manifest("versioned")), .conflict, "app_key_taken")
            // Another org: 404 on every developer route.
            for (method, path, body) in [
                (HTTPRequest.Method.get, "/api/v1/developer/apps/versioned", nil as [String: Any]?),
                (.put, "/api/v1/developer/apps/versioned", manifest("versioned", version: "9.0.0")),
                (.post, "/api/v1/developer/apps/versioned/publish", nil),
                (.post, "/api/v1/developer/apps/versioned/secrets/rotate", ["kind": "webhook"]),
            ] {
                expectProblem(try await app.call(method, path, token: ownerB, json: body), .notFound, "not_found")
            }

            expectProblem(try await app.call(.put, "/api/v1/developer/apps/versioned", token: ownerA, json: manifest("versioned", version: "1.0.0")),
                          .conflict, "version_not_increased")
            expectProblem(try await app.call(.put, "/api/v1/developer/apps/versioned", token: ownerA, json: manifest("versioned", version: "0.9.0")),
                          .conflict, "version_not_increased")
            let mismatch = try await app.call(.put, "/api/v1/developer/apps/versioned", token: ownerA, json: manifest("renamed", version: "2.0.0"))
            expectProblem(mismatch, .unprocessableContent, "invalid_manifest")
            let v2 = try await app.call(.put, "/api/v1/developer/apps/versioned", token: ownerA, json: manifest("versioned", version: "1.1.0", name: "Versioned Two"))
            #expect(v2.status == .ok)
            #expect(v2.json["version"] as? String == "1.1.0")
            #expect(v2.json["secrets"] == nil)
            let detail = try await app.call(.get, "/api/v1/developer/apps/versioned", token: ownerA)
            #expect(detail.json["versions"] as? [String] == ["1.0.0", "1.1.0"])

            expectProblem(try await app.call(.post, "/api/v1/developer/apps/versioned/unlist", token: ownerA), .conflict, "invalid_status_change")
            #expect(try await app.call(.post, "/api/v1/developer/apps/versioned/publish", token: ownerA).json["status"] as? String == "published")
            #expect(try await app.call(.post, "/api/v1/developer/apps/versioned/unlist", token: ownerA).json["status"] as? String == "unlisted")
        }
    }

    /// Old and new secrets both verify for 24 hours after a rotation, then only the new one.
    @Test(arguments: TestEngines.all)
    func rotationOverlapsFor24HoursThenOnlyTheNewSecretVerifies(engine: StorageEngine) async throws {
        let clock = ManualClock()
        try await withApp(engine, clock: clock.wallClock) { app in
            let (_, owner) = try await app.makeOrg()
            let registered = try await app.registerApp(manifest("rotating"), token: owner)
            let appID = try #require(registered["id"] as? String)
            let old = try #require((registered["secrets"] as? [String: String])?["command"])

            let rotated = try await app.call(.post, "/api/v1/developer/apps/rotating/secrets/rotate", token: owner, json: ["kind": "command"])
            #expect(rotated.status == .ok, "\(rotated.text)")
            let new = try #require(rotated.json["secret"] as? String)
            #expect(new != old && new.hasPrefix("whsec_"))
            #expect(rotated.json["kind"] as? String == "command")
            let until = try #require(rotated.json["previous_valid_until"] as? String)
            #expect(until == PluginSupport.timestamp(clock.wallClock.now().addingTimeInterval(24 * 3600)))

            #expect(try await app.runtime.registry.verificationSecrets(appID: appID, kind: .command) == [new, old])
            clock.advance(by: 24 * 3600 - 1)
            #expect(try await app.runtime.registry.verificationSecrets(appID: appID, kind: .command) == [new, old])
            clock.advance(by: 2)
            #expect(try await app.runtime.registry.verificationSecrets(appID: appID, kind: .command) == [new])

            // Two rotations in a row: only the two newest verify.
            let second = try await app.call(.post, "/api/v1/developer/apps/rotating/secrets/rotate", token: owner, json: ["kind": "command"]).json["secret"] as! String
            let third = try await app.call(.post, "/api/v1/developer/apps/rotating/secrets/rotate", token: owner, json: ["kind": "command"]).json["secret"] as! String
            #expect(try await app.runtime.registry.verificationSecrets(appID: appID, kind: .command) == [third, second])
            // Webhook secrets rotate on their own.
            #expect(try await app.runtime.registry.verificationSecrets(appID: appID, kind: .webhook).count == 1)
            expectProblem(try await app.call(.post, "/api/v1/developer/apps/rotating/secrets/rotate", token: owner, json: ["kind": "master"]),
                          .unprocessableContent, "invalid_request")
        }
    }

    @Test(arguments: TestEngines.all)
    func catalogSearchFiltersPagesAndHidesOtherOrgsDrafts(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let (devOrg, dev) = try await app.makeOrg(plan: "enterprise", name: "Dev")
            let (_, freeOwner) = try await app.makeOrg(plan: "free", name: "Customer")
            _ = try await app.registerApp(manifest("slack-alerts", name: "Slack Alerts", description: "Send build failures to a channel.", categories: ["communication"]), token: dev)
            _ = try await app.registerApp(manifest("pay-sync", name: "Payments Sync", description: "Reconcile 100% of payouts_daily.", plan: "pro", categories: ["payments"]), token: dev)
            _ = try await app.registerApp(manifest("secret-draft", name: "Draft Thing", description: "Not ready."), token: dev)
            for key in ["slack-alerts", "pay-sync"] {
                #expect(try await app.call(.post, "/api/v1/developer/apps/\(key)/publish", token: dev).status == .ok)
            }

            let all = try await app.call(.get, "/api/v1/apps", token: freeOwner)
            let keys = (all.json["data"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            #expect(keys == ["pay-sync", "slack-alerts"])
            expectProblem(try await app.call(.get, "/api/v1/apps/secret-draft", token: freeOwner), .notFound, "not_found")
            // The developer org sees its own draft.
            let own = try await app.call(.get, "/api/v1/apps", token: dev)
            #expect((own.json["data"] as? [[String: Any]])?.count == 3)
            #expect(try await app.call(.get, "/api/v1/apps/secret-draft", token: dev).json["status"] as? String == "draft")

            let pay = try await app.call(.get, "/api/v1/apps/pay-sync", token: freeOwner)
            #expect(pay.json["installable"] as? Bool == false)
            #expect((pay.json["not_installable_reason"] as? String)?.contains("pro") == true)
            #expect((pay.json["config"] as? [[String: Any]])?.first?["type"] as? String == "secret")
            #expect(try await app.call(.get, "/api/v1/apps/slack-alerts", token: freeOwner).json["installable"] as? Bool == true)
            #expect(devOrg.hasPrefix("org_"))

            func search(_ query: String) async throws -> [String] {
                let answer = try await app.call(.get, "/api/v1/apps?\(query)", token: freeOwner)
                #expect(answer.status == .ok, "\(answer.text)")
                return (answer.json["data"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            }
            #expect(try await search("q=channel") == ["slack-alerts"])
            #expect(try await search("q=SLACK%20build") == ["slack-alerts"])
            #expect(try await search("q=100%25") == ["pay-sync"])            // % is literal
            #expect(try await search("q=payouts_daily") == ["pay-sync"])     // _ is literal
            #expect(try await search("q=payoutsXdaily") == [])
            #expect(try await search("q=draft") == [])
            #expect(try await search("category=payments") == ["pay-sync"])
            #expect(try await search("category=communication&q=payments") == [])

            let first = try await app.call(.get, "/api/v1/apps?limit=1", token: freeOwner)
            #expect((first.json["data"] as? [[String: Any]])?.first?["key"] as? String == "pay-sync")
            let cursor = try #require(first.json["next_cursor"] as? String)
            let second = try await app.call(.get, "/api/v1/apps?limit=1&cursor=\(cursor)", token: freeOwner)
            #expect((second.json["data"] as? [[String: Any]])?.first?["key"] as? String == "slack-alerts")
            #expect(second.json["next_cursor"] is NSNull)
            expectProblem(try await app.call(.get, "/api/v1/apps?limit=0", token: freeOwner), .unprocessableContent, "invalid_request")
            expectProblem(try await app.call(.get, "/api/v1/apps?limit=500", token: freeOwner), .unprocessableContent, "invalid_request")
            expectProblem(try await app.call(.get, "/api/v1/apps?cursor=garbage!", token: freeOwner), .unprocessableContent, "invalid_request")
            expectProblem(try await app.call(.get, "/api/v1/apps"), .unauthorized, "unauthenticated")
        }
    }

    @Test(arguments: TestEngines.all)
    func catalogImportIsIdempotentAndReportsBadFiles(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let importer = CatalogImporter(runtime: app.runtime)
            let first = try await importer.importDirectory(root.appendingPathComponent("catalog"))
            #expect(first.problems.isEmpty, "\(first.problems)")
            #expect(first.providers >= 8)
            #expect(first.appsCreated.count >= 10)
            let second = try await importer.importDirectory(root.appendingPathComponent("catalog"))
            #expect(second.appsCreated.isEmpty && second.appsUpdated.isEmpty)
            #expect(second.appsUnchanged.count == first.appsCreated.count)

            // A folder with a newer version, a broken file and a stolen key.
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cat-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("apps"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            var newer = try String(contentsOf: root.appendingPathComponent("catalog/apps/slack-notify.yaml"), encoding: .utf8)
            newer = newer.replacingOccurrences(of: #"(?m)^version:.*$"#, with: "version: 99.0.0", options: .regularExpression)
            try newer.write(to: dir.appendingPathComponent("apps/slack-notify.yaml"), atomically: true, encoding: .utf8)
            try "key: broken-app\nversion: nope\n".write(to: dir.appendingPathComponent("apps/broken-app.yaml"), atomically: true, encoding: .utf8)
            let (_, owner) = try await app.makeOrg()
            _ = try await app.registerApp(manifest("taken-key"), token: owner)
            try JSONSerialization.data(withJSONObject: manifest("taken-key", version: "5.0.0")).write(to: dir.appendingPathComponent("apps/taken-key.json"))
            let third = try await importer.importDirectory(dir)
            #expect(third.appsUpdated == ["slack-notify"])
            #expect(third.problems.count == 2)
            #expect(third.problems.contains { $0.hasPrefix("broken-app.yaml") && $0.contains("version") })
            #expect(third.problems.contains { $0.hasPrefix("taken-key.json") && $0.contains("another org") })

            let listing = try await app.call(.get, "/api/v1/apps/slack-notify", token: owner)
            #expect(listing.json["version"] as? String == "99.0.0")
        }
    }
}
