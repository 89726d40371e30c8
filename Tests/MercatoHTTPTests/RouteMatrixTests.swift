import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoStorage
import MercatoTestSupport
import Testing

/// Every `/api/v1` route, taken from the router's own table, against the OpenAPI document and
/// against callers who must be refused: another org's token gets 404 on org A's resources, a
/// role below the documented `x-mercato-role` gets 403, the documented role is not refused.
/// Each check is a column run over every route: another org, every lower role, a token without
/// the route's scope (403 `token_scope_missing`), the documented role; a new check is one more
/// entry in ``columns``.
@Suite("Route matrix: every API route, another org and every lower role")
struct RouteMatrixTests {
    /// Routes no column can exercise with a bearer token, and why. Their own suites cover them.
    static let notExercised: [String: String] = [
        "POST /api/v1/apps/commands": "authenticated by the app's Standard Webhooks signature, not a token (GatewayTests)",
        "POST /api/v1/inbound/{}/{}": "authenticated by the provider's signature, not a token (InboundTests)",
        "GET /api/v1/oauth/callback": "the provider's redirect, bound to a state and a browser cookie, not a token (OAuthTests)",
    ]

    /// Roles from least to most; the operator is above every org role.
    static let ranks = ["member", "developer", "admin", "owner", "operator"]

    /// One documented operation, with the concrete path that names org A's resources.
    struct Operation {
        let method: HTTPRequest.Method
        let template: String
        let role: String
        /// The token scope the route needs (`x-mercato-scope`), nil when none.
        let scope: String?
        let path: String
        /// Names a resource of org A (so another org must get 404).
        let orgOwned: Bool
        let body: Any?
        var name: String { "\(method.rawValue) \(template)" }
    }

    /// What org A holds and the tokens of both orgs.
    struct Seed {
        let org: String
        let tokens: [String: String]        // role → org A's token ("operator" → the operator's)
        let otherOwner: String
        let spareTokenID: String
        let installID: String
        let appKey: String
        let draftKey: String
        let notificationID: String
        let deliveryID: String
        /// An org webhook endpoint of org A and its `webhook.test` delivery.
        let webhookID: String
        let webhookDeliveryID: String
        /// scope → an owner token of org A holding every scope but that one.
        let withoutScope: [String: String]
    }

    static let allScopes = ["apps:read", "apps:write", "installs:read", "installs:write", "connections:write", "webhooks:read",
                            "webhooks:write", "audit:read", "tokens:write", "docs:read"]

    struct Column: Sendable {
        let name: String
        let check: @Sendable (AppHarness, Seed, Operation) async throws -> String?
    }

    static let columns: [Column] = [
        Column(name: "another org gets 404") { app, seed, op in
            guard op.orgOwned, op.role != "operator", op.role != "public" else { return nil }
            let answer = try await send(app, op, token: seed.otherOwner)
            return answer.status == .notFound && isProblem(answer) ? nil : "\(answer.status.code) \(answer.text.prefix(160))"
        },
        Column(name: "a lower role gets 403") { app, seed, op in
            guard let rank = ranks.firstIndex(of: op.role) else { return nil }
            var wrong: [String] = []
            for lower in ranks[..<rank] {
                let answer = try await send(app, op, token: seed.tokens[lower]!)
                if answer.status != .forbidden || !isProblem(answer) { wrong.append("\(lower): \(answer.status.code) \(answer.text.prefix(120))") }
            }
            return wrong.isEmpty ? nil : wrong.joined(separator: "; ")
        },
        Column(name: "a token without the route's scope gets 403 token_scope_missing") { app, seed, op in
            guard let scope = op.scope, op.role != "operator", op.role != "public" else { return nil }
            guard let token = seed.withoutScope[scope] else { return "no token lacking \(scope)" }
            let answer = try await send(app, op, token: token)
            let named = (answer.json["detail"] as? String)?.contains(scope) == true
            return answer.status == .forbidden && answer.json["code"] as? String == "token_scope_missing" && named && isProblem(answer)
                ? nil : "\(answer.status.code) \(answer.text.prefix(160))"
        },
        // Last: the documented role's requests change things (an uninstall, a revoked token).
        Column(name: "the documented role is not refused") { app, seed, op in
            // A public route answers without any token.
            let token = seed.tokens[op.role]
            guard token != nil || op.role == "public" else { return "no token of the role \(op.role)" }
            let answer = try await send(app, op, token: token)
            return [.forbidden, .unauthorized].contains(answer.status) ? "\(answer.status.code) \(answer.text.prefix(160))" : nil
        },
    ]

    @Test(arguments: TestEngines.all)
    func everyRouteAgainstAnotherOrgAndEveryLowerRole(engine: StorageEngine) async throws {
        try await withApp(engine) { app in
            let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
            let paths = try #require(document["paths"] as? [String: [String: Any]])

            // The route table and the document name the same operations.
            let router = buildRouter(runtime: app.runtime, metrics: nil, logger: app.logs.logger())
            let served = Set(router.routes.map { OpenAPITests.normalise($0.method.rawValue, $0.path.description) }.filter { $0.contains(" /api/v1/") })
            var documented: [String: (template: String, operation: [String: Any])] = [:]
            for (path, item) in paths where path.hasPrefix("/api/v1/") {
                for (method, operation) in item {
                    guard let operation = operation as? [String: Any], ["get", "post", "put", "patch", "delete"].contains(method) else { continue }
                    documented[OpenAPITests.normalise(method, path)] = (path, operation)
                }
            }
            #expect(served == Set(documented.keys), "served only: \(served.subtracting(documented.keys).sorted()); documented only: \(Set(documented.keys).subtracting(served).sorted())")
            #expect(Set(Self.notExercised.keys).isSubset(of: served), "a listed exception is no longer a route")

            let seed = try await Self.seed(app)
            var operations: [Operation] = []
            for key in served.sorted() where Self.notExercised[key] == nil {
                guard let (template, operation) = documented[key] else { continue }
                let role = try #require(operation["x-mercato-role"] as? String, "\(key) has no x-mercato-role")
                let (path, orgOwned) = Self.concrete(template, seed)
                let body = (((operation["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any])?["example"]
                operations.append(Operation(method: HTTPRequest.Method(key.split(separator: " ")[0].uppercased())!, template: template, role: role,
                                            scope: operation["x-mercato-scope"] as? String, path: path, orgOwned: orgOwned, body: body))
            }
            #expect(operations.count >= 40, "the matrix covers the API (\(operations.count) operations)")
            #expect(operations.contains { $0.orgOwned } && operations.contains { $0.role == "operator" } && operations.contains { $0.role == "admin" })
            #expect(Set(operations.compactMap(\.scope)) == Set(Self.allScopes), "every scope guards some route")
            // Deletions last, the install's own last of all, so earlier rows still find what they name.
            operations.sort { Self.order($0) < Self.order($1) }

            for column in Self.columns {
                for op in operations {
                    if let failure = try await column.check(app, seed, op) {
                        Issue.record("\(column.name): \(op.name) as \(op.role): \(failure)")
                    }
                }
            }
        }
    }

    static func order(_ op: Operation) -> Int {
        guard op.method == .delete else { return 0 }
        return op.template == "/api/v1/installs/{id}" ? 2 : 1
    }

    /// The template with org A's resources in it, and whether any of them is org A's.
    static func concrete(_ template: String, _ seed: Seed) -> (String, Bool) {
        var owned = false
        var out: [String] = []
        let segments = template.split(separator: "/").map(String.init)
        for (i, segment) in segments.enumerated() {
            guard segment.hasPrefix("{") else { out.append(segment); continue }
            let parent = i > 0 ? segments[i - 1] : ""
            let grand = i > 1 ? segments[i - 2] : ""
            var value: String
            switch (segment, parent) {
            case ("{org_id}", _): value = seed.org; owned = true
            case ("{tok_id}", _): value = seed.spareTokenID; owned = true
            case ("{id}", "installs"): value = seed.installID; owned = true
            case ("{id}", "notifications"): value = seed.notificationID; owned = true
            case ("{id}", "plugins"): value = "tasks"                      // the operator's, no org's
            case ("{key}", "providers"): value = "github"                  // the operator's, no org's
            case ("{key}", "apps") where grand == "developer": value = seed.appKey; owned = true
            case ("{key}", "apps"): value = seed.draftKey; owned = true      // a draft: only its developer org sees it
            case ("{id}", "webhooks"): value = seed.webhookID; owned = true
            case ("{msg_id}", _) where template.contains("/webhooks/"): value = seed.webhookDeliveryID; owned = true
            case ("{msg_id}", _): value = seed.deliveryID; owned = true
            default: value = "unknown"
            }
            out.append(value)
        }
        return ("/" + out.joined(separator: "/"), owned)
    }

    static func send(_ app: AppHarness, _ op: Operation, token: String?) async throws -> Answer {
        try await app.call(op.method, op.path, token: token, json: op.body)
    }

    static func isProblem(_ answer: Answer) -> Bool {
        answer.headers[.contentType] == "application/problem+json" && answer.json["code"] is String
    }

    /// Org A (the app's developer and its customer, so every kind of resource is its own) with
    /// a token of each role, an install, a notification, a delivery and a spare token; org B's owner.
    /// A connection is addressed by its install's id (`/installs/{id}/connection`), so the
    /// install stands for it here; OAuthTests connects a real one.
    static func seed(_ app: AppHarness) async throws -> Seed {
        let (org, owner) = try await app.makeOrg(plan: "enterprise", name: "Org A")
        var tokens = ["owner": owner, "operator": app.operatorToken]
        for role in ["admin", "developer", "member"] { tokens[role] = try await app.makeToken(org: org, role: role, by: owner) }
        let spare = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": "spare", "role": "member"])
        let (_, otherOwner) = try await app.makeOrg(plan: "enterprise", name: "Org B")

        var m = manifest("matrix-app")
        m["scopes"] = ["notifications:write"]
        let registered = try await app.registerApp(m, token: owner)
        let secret = try #require((registered["secrets"] as? [String: String])?["command"])
        #expect(try await app.call(.post, "/api/v1/developer/apps/matrix-app/publish", token: owner).status == .ok)
        _ = try await app.registerApp(manifest("matrix-draft"), token: owner)
        let installed = try await app.call(.post, "/api/v1/installs", token: owner, json: ["app": "matrix-app", "config": ["api_key": "sk_matrix"]])
        #expect(installed.status == .created, "\(installed.text)")
        let installID = try #require(installed.json["id"] as? String)

        let sender = CommandSender(installID: installID, appKey: "matrix-app", secret: secret, adminToken: owner, vendorToken: owner)
        let (headers, body) = try sender.sign(["install_id": installID, "command": "notifications.create", "args": ["title": "Matrix"]])
        let created = try await app.send(headers, body)
        #expect(created.status == .ok, "\(created.text)")
        let notificationID = try #require((created.json["result"] as? [String: Any])?["id"] as? String)

        let clients = DeliveryClients(grace: .milliseconds(10))
        let deliveries = DeliveryService(database: app.runtime.database, registry: app.runtime.registry, clients: clients, clock: .system,
                                         logger: TestDatabase.logger, policy: DeliveryPolicy(), addressGuard: AddressGuard(allowPrivate: false))
        let fannedOut = try await deliveries.fanOut()
        try await clients.shutdown()
        #expect(fannedOut >= 1)
        let log = try await app.call(.get, "/api/v1/developer/apps/matrix-app/deliveries", token: owner)
        let deliveryID = try #require((log.json["data"] as? [[String: Any]])?.first?["id"] as? String, "\(log.text)")

        // An org webhook endpoint (a host that never resolves: accepted, never reached) and its test delivery.
        let endpoint = try await app.call(.post, "/api/v1/webhooks", token: owner,
                                          json: ["url": "https://matrix-receiver.invalid/hooks", "events": ["app.installed"]])
        #expect(endpoint.status == .created, "\(endpoint.text)")
        let webhookID = try #require(endpoint.json["id"] as? String)
        let test = try await app.call(.post, "/api/v1/webhooks/\(webhookID)/test", token: owner)
        let webhookDeliveryID = try #require(test.json["id"] as? String, "\(test.text)")

        var withoutScope: [String: String] = [:]
        for scope in allScopes {
            let made = try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner,
                                          json: ["name": "without \(scope)", "role": "owner", "scopes": allScopes.filter { $0 != scope }])
            #expect(made.status == .created, "\(made.text)")
            withoutScope[scope] = try #require(made.json["token"] as? String)
        }

        return Seed(org: org, tokens: tokens, otherOwner: otherOwner, spareTokenID: try #require(spare.json["id"] as? String),
                    installID: installID, appKey: "matrix-app", draftKey: "matrix-draft", notificationID: notificationID, deliveryID: deliveryID,
                    webhookID: webhookID, webhookDeliveryID: webhookDeliveryID, withoutScope: withoutScope)
    }
}
