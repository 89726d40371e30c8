import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoStorage
import MercatoTestSupport
import MercatoWeb
import SQLKit
import Testing

/// Every browser page, taken from the router's own table, against the people who must be
/// refused (CONTRACT §8: "Pages check the same roles as the API; another org's things are 404
/// pages"): another org's owner gets a 404 page on every page naming org A's things, every role
/// below the page's minimum gets a 403 page, and neither changes anything (GET and POST, the
/// POSTs with a valid CSRF token of the caller's own session); the minimum role's GET is not
/// refused. The minimum roles are the ``table`` below (CONTRACT §8's "Pages" table, and the
/// API's `x-mercato-role` for the same action where §8 names only the page); a page the
/// router serves without a row, or a row the router no longer serves, fails the test.
@Suite("Page matrix: every page, another org and every lower role")
struct PageMatrixTests {
    /// What a page's path parameter names in the seed.
    enum Names: Sendable {
        case publishedApp   // org A's published app, installed by org A
        case install        // org A's install of it
        case draftApp       // org A's draft app: only org A sees it
        case notification   // org A's notification
        case token          // a spare API token of org A
        case webhook        // org A's webhook endpoint
        case webhookDelivery // its webhook.test delivery
        case appDelivery    // a delivery of org A's published app
        case secretKind     // `command` (not a resource of any org)
    }

    /// One page route: its method and template as the router has them, its minimum role (a role
    /// of CONTRACT §8, or "public" with the reason), what its parameters name, the form it sends.
    struct Row: Sendable {
        let method: HTTPRequest.Method
        let template: String
        let role: String
        var names: [String: Names] = [:]
        var fields: [String: String] = [:]
        /// More things the same page is read with by its minimum role (column 3), e.g. an app
        /// page both before and after its install.
        var also: [[String: Names]] = []
        /// Why a public page is public (nil for the others).
        var publicBecause: String?
        var key: String { OpenAPITests.normalise(method.rawValue, template) }
    }

    static func get(_ template: String, _ role: String, _ names: [String: Names] = [:], also: [[String: Names]] = []) -> Row {
        Row(method: .get, template: template, role: role, names: names, also: also)
    }

    static func post(_ template: String, _ role: String, _ names: [String: Names] = [:], _ fields: [String: String] = [:]) -> Row {
        Row(method: .post, template: template, role: role, names: names, fields: fields)
    }

    static func open(_ method: HTTPRequest.Method, _ template: String, because: String) -> Row {
        Row(method: method, template: template, role: "public", publicBecause: because)
    }

    static let published: [String: Names] = ["key": .publishedApp]

    /// Every page with its minimum role (CONTRACT §8 "Pages"; actions on an app page are the
    /// API's roles for the same action: install, settings, upgrade, enable/disable, connect,
    /// disconnect and uninstall are admin+).
    static let table: [Row] = [
        open(.get, "/", because: "redirects to /login or /marketplace, shows nothing"),
        open(.get, "/login", because: "the sign-in form"),
        open(.post, "/login", because: "signing in (throttled, WebPagesTests)"),
        open(.post, "/logout", because: "ends the caller's own session"),
        open(.get, "/invite/{token}", because: "the invitation's single-use token is the credential (WebPagesTests)"),
        open(.post, "/invite/{token}", because: "the invitation's single-use token is the credential (WebPagesTests)"),
        open(.get, "/sso/jwt", because: "the host's signed JWT is the credential (EmbeddedSignInTests)"),

        get("/marketplace", "member"),
        get("/marketplace/{key}", "member", ["key": .draftApp], also: [published]),
        post("/marketplace/{key}/install", "admin", ["key": .draftApp], ["config.api_key": "sk_page_matrix"]),
        post("/marketplace/{key}/config", "admin", published, ["config.api_key": "sk_page_changed"]),
        post("/marketplace/{key}/upgrade", "admin", published, ["version": "9.9.9"]),
        post("/marketplace/{key}/disable", "admin", published),
        post("/marketplace/{key}/enable", "admin", published),
        get("/marketplace/{key}/connect", "admin", published),
        post("/marketplace/{key}/disconnect", "admin", published),
        get("/marketplace/{key}/uninstall", "admin", published),
        post("/marketplace/{key}/uninstall", "admin", published),
        get("/installs", "member"),
        get("/installs/{id}/connected", "member", ["id": .install]),
        get("/notifications", "member"),
        post("/notifications/{id}/dismiss", "member", ["id": .notification]),

        get("/settings/tokens", "owner"),
        post("/settings/tokens", "owner", [:], ["name": "page matrix", "role": "member"]),
        post("/settings/tokens/{id}/revoke", "owner", ["id": .token]),
        get("/settings/tokens/{id}/usage", "owner", ["id": .token]),

        get("/settings/webhooks", "admin"),
        post("/settings/webhooks", "admin", [:], ["url": "https://page-matrix.invalid/hooks", "events": "app.installed"]),
        get("/settings/webhooks/{id}", "admin", ["id": .webhook]),
        get("/settings/webhooks/{id}/deliveries/{msg_id}", "admin", ["id": .webhook, "msg_id": .webhookDelivery]),
        post("/settings/webhooks/{id}/deliveries/{msg_id}/retry", "admin", ["id": .webhook, "msg_id": .webhookDelivery]),
        post("/settings/webhooks/{id}/rotate", "admin", ["id": .webhook]),
        post("/settings/webhooks/{id}/test", "admin", ["id": .webhook]),
        post("/settings/webhooks/{id}/status", "admin", ["id": .webhook], ["status": "disabled"]),
        get("/settings/webhooks/{id}/delete", "admin", ["id": .webhook]),
        post("/settings/webhooks/{id}/delete", "admin", ["id": .webhook]),

        get("/audit", "admin"),
        get("/audit/export", "admin"),

        get("/developer", "developer"),
        get("/developer/docs", "developer"),
        get("/developer/apps/new", "developer"),
        post("/developer/apps/new", "developer", [:], ["manifest": Self.manifestText("page-matrix-new")]),
        get("/developer/apps/{key}", "developer", published),
        post("/developer/apps/{key}/versions", "developer", published, ["manifest": Self.manifestText("matrix-app", version: "2.0.0")]),
        post("/developer/apps/{key}/publish", "developer", ["key": .draftApp]),
        post("/developer/apps/{key}/unlist", "developer", published),
        post("/developer/apps/{key}/rotate/{kind}", "developer", ["key": .publishedApp, "kind": .secretKind]),
        get("/developer/apps/{key}/deliveries/{msg_id}", "developer", ["key": .publishedApp, "msg_id": .appDelivery]),
        post("/developer/apps/{key}/deliveries/{msg_id}/retry", "developer", ["key": .publishedApp, "msg_id": .appDelivery]),
        post("/developer/apps/{key}/recover", "developer", published, ["since": "2026-01-01T00:00"]),
    ]

    static func manifestText(_ key: String, version: String = "1.0.0") -> String {
        let data = try! JSONSerialization.data(withJSONObject: manifest(key, version: version), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// The org roles from least to most.
    static let ranks = ["member", "developer", "admin", "owner"]

    /// Whether a route is a page (not the API, static files, probes, metrics or OAuth's redirects).
    static func isPage(_ path: String) -> Bool {
        let path = path.hasPrefix("/") ? path : "/" + path
        return !["/api/", "/static/", "/oauth/"].contains { path.hasPrefix($0) } && !["/healthz", "/readyz", "/metrics"].contains(path)
    }

    /// Org A's things, a signed-in browser of each role in org A, and org B's owner's browser.
    struct Seed {
        let api: RouteMatrixTests.Seed
        let browsers: [String: PageBrowser]
        let otherOwner: PageBrowser
        /// Each browser's CSRF token (it is bound to the session, so one read serves every form).
        let csrf: [ObjectIdentifier: String]

        func value(_ names: Names) -> String {
            switch names {
            case .publishedApp: api.appKey
            case .install: api.installID
            case .draftApp: api.draftKey
            case .notification: api.notificationID
            case .token: api.spareTokenID
            case .webhook: api.webhookID
            case .webhookDelivery: api.webhookDeliveryID
            case .appDelivery: api.deliveryID
            case .secretKind: "command"
            }
        }
    }

    /// The row's path with the seed's things in it, and whether any of them is org A's.
    static func concrete(_ row: Row, _ seed: Seed, names: [String: Names]? = nil) -> (path: String, orgOwned: Bool) {
        var owned = false
        let segments = row.template.split(separator: "/").map { segment -> String in
            guard segment.hasPrefix("{"), let names = (names ?? row.names)[String(segment.dropFirst().dropLast())] else { return String(segment) }
            if names != .secretKind { owned = true }
            return seed.value(names)
        }
        return ("/" + segments.joined(separator: "/"), owned)
    }

    static func send(_ browser: PageBrowser, _ row: Row, _ path: String, seed: Seed) async throws -> Answer {
        guard row.method == .post else { return try await browser.get(path) }
        var fields = row.fields
        fields["csrf_token"] = seed.csrf[ObjectIdentifier(browser)]
        return try await browser.post(path, fields, csrf: false)
    }

    static func isPage(_ answer: Answer) -> Bool {
        answer.headers[.contentType]?.hasPrefix("text/html") == true
    }

    @Test(arguments: TestEngines.all)
    func everyPageAgainstAnotherOrgAndEveryLowerRole(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            // The router's page routes and the table name the same pages.
            let web = try WebPages(runtime: app.runtime, logger: app.logs.logger())
            let router = buildRouter(runtime: app.runtime, metrics: nil, logger: app.logs.logger(), pages: web.register)
            let served = Set(router.routes.filter { Self.isPage($0.path.description) }.map { OpenAPITests.normalise($0.method.rawValue, $0.path.description) })
            let listed = Dictionary(Self.table.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            #expect(listed.count == Self.table.count, "a page is listed twice")
            #expect(served.subtracting(listed.keys).isEmpty, "pages without a row in the table: \(served.subtracting(listed.keys).sorted())")
            #expect(Set(listed.keys).subtracting(served).isEmpty, "rows for pages the router no longer has: \(Set(listed.keys).subtracting(served).sorted())")
            for row in Self.table {
                #expect(Self.ranks.contains(row.role) || (row.role == "public" && row.publicBecause != nil), "\(row.key): role \(row.role)")
            }

            let seed = try await Self.seed(app)
            let rows = Self.table.filter { $0.role != "public" && served.contains($0.key) }
            #expect(rows.count >= 40 && rows.contains { Self.concrete($0, seed).orgOwned } && rows.contains { $0.role == "owner" })

            // (1) and (2): refused, and nothing changes. One snapshot serves as the next one's "before".
            var before = try await Self.snapshot(app)
            func unchanged(_ what: String) async throws {
                let after = try await Self.snapshot(app)
                if after != before {
                    let changed = after.keys.filter { after[$0] != before[$0] }.sorted()
                    Issue.record("\(what) changed \(changed)")
                    before = after
                }
            }
            for row in rows {
                let (path, orgOwned) = Self.concrete(row, seed)
                if orgOwned {
                    let answer = try await Self.send(seed.otherOwner, row, path, seed: seed)
                    if answer.status != .notFound || !Self.isPage(answer) {
                        Issue.record("another org gets 404: \(row.key) (\(path)): \(answer.status.code) \(answer.text.prefix(160))")
                    }
                    try await unchanged("another org's \(row.key)")
                }
                for lower in Self.ranks[..<Self.ranks.firstIndex(of: row.role)!] {
                    let answer = try await Self.send(seed.browsers[lower]!, row, path, seed: seed)
                    if answer.status != .forbidden || !Self.isPage(answer) {
                        Issue.record("a lower role gets 403: \(row.key) as \(lower) (minimum \(row.role)): \(answer.status.code) \(answer.text.prefix(160))")
                    }
                    try await unchanged("\(lower)'s \(row.key)")
                }
            }

            // (3) The minimum role's GET is not refused (the POSTs change things: their suites send them).
            for row in rows where row.method == .get {
                for names in [row.names] + row.also {
                    let (path, _) = Self.concrete(row, seed, names: names)
                    let answer = try await Self.send(seed.browsers[row.role]!, row, path, seed: seed)
                    if [.unauthorized, .forbidden, .notFound].contains(answer.status) || answer.status.code >= 500 {
                        Issue.record("the minimum role is not refused: \(row.key) (\(path)) as \(row.role): \(answer.status.code) \(answer.text.prefix(160))")
                    }
                }
            }
        }
    }

    /// Org A as the API matrix seeds it (an app of its own published and installed, a draft,
    /// a notification, a delivery, a webhook endpoint and its test delivery, a spare token),
    /// a signed-in person of every role in org A, and org B's owner signed in.
    static func seed(_ app: AppHarness) async throws -> Seed {
        let api = try await RouteMatrixTests.seed(app)
        let owner = try #require(api.tokens["owner"])
        var browsers: [String: PageBrowser] = [:]
        for role in ranks { browsers[role] = try await app.signedIn(org: api.org, role: role, by: owner, email: "\(role)@a.example") }
        let (orgB, ownerB) = try await app.makeOrg(plan: "enterprise", name: "Org B")
        let otherOwner = try await app.signedIn(org: orgB, role: "owner", by: ownerB, email: "owner@b.example")
        var csrf: [ObjectIdentifier: String] = [:]
        for browser in Array(browsers.values) + [otherOwner] {
            let page = try await browser.get("/installs")
            let token: String = try #require(PageBrowser.csrf(in: page.text))
            csrf[ObjectIdentifier(browser)] = token
        }
        return Seed(api: api, browsers: browsers, otherOwner: otherOwner, csrf: csrf)
    }

    /// The tables a page could change, each as its sorted rows (every column as text), without
    /// what reading changes (sessions, token usage, sign-in throttling).
    static let watched = ["orgs", "memberships", "principals", "api_tokens", "invitations", "apps", "app_versions", "app_categories",
                          "app_secrets", "installs", "install_rate_limits", "sealed_values", "oauth_connections", "oauth_states",
                          "plugin_kv", "outbox_events", "webhook_deliveries", "webhook_attempts", "webhook_endpoints",
                          "org_webhook_endpoints", "org_webhook_secrets", "command_log", "audit_log"]
    /// Columns that a read or a background step updates.
    static let volatile: Set<String> = ["last_used_at", "last_seen_at"]

    static func snapshot(_ app: AppHarness) async throws -> [String: [String]] {
        try await app.runtime.database.read { db in
            var tables: [String: [String]] = [:]
            for table in watched {
                let rows = try await db.raw("SELECT * FROM \(unsafeRaw: table)").all()
                tables[table] = rows.map { row in
                    row.allColumns.filter { !volatile.contains($0) }.map { column -> String in
                        if (try? row.decodeNil(column: column)) == true { return "\(column)=null" }
                        // Every reading that works: PostgreSQL reads a BIGINT's bytes as a String,
                        // SQLite may read a TEXT as a number; together they show any change.
                        let readings: [String?] = [
                            (try? row.decode(column: column, as: Int64.self)).map { "\($0)" },
                            (try? row.decode(column: column, as: Double.self)).map { "\($0)" },
                            (try? row.decode(column: column, as: Bool.self)).map { "\($0)" },
                            try? row.decode(column: column, as: String.self),
                            (try? row.decode(column: column, as: [UInt8].self)).map { "\($0)" },
                        ]
                        return "\(column)=" + readings.map { $0 ?? "-" }.joined(separator: "|")
                    }.joined(separator: ",")
                }.sorted()
            }
            return tables
        }
    }
}
