import HTTPTypes
public import MercatoCore
import Synchronization

/// The one table of which token scope each management API route needs (CONTRACT §9), by
/// method and route template under `/api/v1` (parameter names do not matter). `nil`: the route
/// needs no scope, because it is not for org tokens (the operator's routes, whose role check
/// already refuses org tokens; signed commands and redirects that carry no token) or because
/// it only says who the caller is (`GET orgs/{org_id}`).
///
/// Families: reading installs, their commands, connection, what their receiving URLs last got
/// and the org's notifications is
/// `installs:read`; changing them (dismissing a notification included) `installs:write`;
/// starting or removing an OAuth connection `connections:write`; the catalog, the providers
/// list excepted, and the org's own apps (deliveries and command logs included) `apps:read` /
/// `apps:write`; the org's webhook endpoints `webhooks:read` / `webhooks:write`; the audit trail
/// `audit:read`; tokens, their usage and invitations `tokens:write`; the OpenAPI document
/// `docs:read`. A route a third-party plugin adds (not in the table) needs `installs:read` to
/// read and `installs:write` otherwise. A test fails when a built-in route is missing here, and
/// another when the OpenAPI document's `x-mercato-scope` disagrees.
public enum RouteScopes {
    /// `METHOD template` → scope; templates relative to `/api/v1/`, parameters written `{}`.
    public static let table: [String: TokenScope?] = [
        // Tenancy
        "POST orgs": nil,
        "GET orgs/{}": nil,
        "POST orgs/{}/tokens": .tokensWrite,
        "GET orgs/{}/tokens": .tokensWrite,
        "DELETE orgs/{}/tokens/{}": .tokensWrite,
        "GET orgs/{}/tokens/{}/usage": .tokensWrite,
        "POST orgs/{}/invitations": .tokensWrite,
        // Catalog and the org's own apps
        "GET apps": .appsRead,
        "GET apps/{}": .appsRead,
        "POST developer/apps": .appsWrite,
        "GET developer/apps": .appsRead,
        "GET developer/apps/{}": .appsRead,
        "PUT developer/apps/{}": .appsWrite,
        "POST developer/apps/{}/publish": .appsWrite,
        "POST developer/apps/{}/unlist": .appsWrite,
        "POST developer/apps/{}/secrets/rotate": .appsWrite,
        "GET developer/apps/{}/commands": .appsRead,
        "GET developer/apps/{}/deliveries": .appsRead,
        "GET developer/apps/{}/deliveries/{}": .appsRead,
        "POST developer/apps/{}/deliveries/{}/retry": .appsWrite,
        "POST developer/apps/{}/recover": .appsWrite,
        // Installs
        "POST installs": .installsWrite,
        "GET installs": .installsRead,
        "GET installs/{}": .installsRead,
        "PATCH installs/{}/config": .installsWrite,
        "POST installs/{}/disable": .installsWrite,
        "POST installs/{}/enable": .installsWrite,
        "POST installs/{}/upgrade": .installsWrite,
        "DELETE installs/{}": .installsWrite,
        "GET installs/{}/commands": .installsRead,
        "PUT installs/{}/rate_limit": nil,
        // Connections
        "GET providers": .installsRead,
        "PUT providers/{}": nil,
        "GET installs/{}/oauth/start": .connectionsWrite,
        "GET installs/{}/connection": .installsRead,
        "DELETE installs/{}/connection": .connectionsWrite,
        "GET oauth/callback": nil,
        // Signed commands (their own credential) and the plugins' public routes
        "POST apps/commands": nil,
        "POST inbound/{}/{}": nil,
        // What an install's receiving URLs last got (the Inbound plugin): a read of the install
        "GET inbound/{}": .installsRead,
        // Built-in plugins' routes and the operator's view of the plugins
        "GET notifications": .installsRead,
        "POST notifications/{}/dismiss": .installsWrite,
        "GET audit": .auditRead,
        "GET audit/export": .auditRead,
        "GET plugins": nil,
        "POST plugins/{}/enable": nil,
        // The org's webhook endpoints (CONTRACT §10)
        "GET webhooks": .webhooksRead,
        "POST webhooks": .webhooksWrite,
        "GET webhooks/event_types": .webhooksRead,
        "GET webhooks/{}": .webhooksRead,
        "PATCH webhooks/{}": .webhooksWrite,
        "DELETE webhooks/{}": .webhooksWrite,
        "POST webhooks/{}/secret/rotate": .webhooksWrite,
        "POST webhooks/{}/test": .webhooksWrite,
        "GET webhooks/{}/deliveries": .webhooksRead,
        "GET webhooks/{}/deliveries/{}": .webhooksRead,
        "POST webhooks/{}/deliveries/{}/retry": .webhooksWrite,
        // The API reference
        "GET openapi.json": .docsRead,
    ]

    /// The table's key for a method and a route template (`/api/v1/installs/{id}`, `installs/:id`).
    public static func key(_ method: String, _ template: String) -> String {
        var segments = template.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if segments.count >= 2, segments[0] == "api", segments[1] == "v1" { segments.removeFirst(2) }
        let normalised = segments.map { $0.hasPrefix("{") || $0.hasPrefix(":") ? "{}" : $0 }
        return method.uppercased() + " " + normalised.joined(separator: "/")
    }

    /// `true` when the table names the route.
    public static func isListed(_ method: String, _ template: String) -> Bool {
        table.keys.contains(key(method, template))
    }

    /// The scope `method template` needs: the table's, or the rule for a route no built-in
    /// code declares (a third-party plugin's): reading `installs:read`, else `installs:write`.
    public static func required(_ method: String, _ template: String) -> TokenScope? {
        let asked = Asked(method: method, template: template)
        if let known = answers.withLock({ $0[asked] }) { return known }
        let scope: TokenScope? = if let listed = table[key(method, template)] { listed } else { method.uppercased() == "GET" ? .installsRead : .installsWrite }
        // Every token-authenticated request asks: the answer per route is kept (the routes are
        // a fixed set, so the table stays small), not the key built again each time.
        answers.withLock { if $0.count < 4096 { $0[asked] = scope } }
        return scope
    }

    private struct Asked: Hashable {
        let method: String
        let template: String
    }

    private static let answers = Mutex<[Asked: TokenScope?]>([:])
}
