public import MercatoHooks

/// What an API token may do (CONTRACT §9). A scope narrows the token's role, never widens it:
/// a token holds at most the scopes its role grants, and by default all of them.
public enum TokenScope: String, Sendable, CaseIterable, Codable, Comparable {
    case appsRead = "apps:read"
    case appsWrite = "apps:write"
    case installsRead = "installs:read"
    case installsWrite = "installs:write"
    case connectionsWrite = "connections:write"
    case webhooksRead = "webhooks:read"
    case webhooksWrite = "webhooks:write"
    case auditRead = "audit:read"
    case tokensWrite = "tokens:write"
    case docsRead = "docs:read"

    /// The least role that may hold the scope (the routes behind it ask for that role or more).
    public var minimumRole: MemberRole {
        switch self {
        case .appsRead, .installsRead, .docsRead: .member
        case .appsWrite: .developer
        case .installsWrite, .connectionsWrite, .webhooksRead, .webhooksWrite, .auditRead: .admin
        case .tokensWrite: .owner
        }
    }

    /// What the scope lets a program do, in plain words (the tokens page).
    public var label: String {
        switch self {
        case .appsRead: "See the catalog and the apps this org develops"
        case .appsWrite: "Register, change and publish the apps this org develops"
        case .installsRead: "See installed apps, their settings and logs"
        case .installsWrite: "Install, configure, pause and remove apps"
        case .connectionsWrite: "Connect and disconnect outside accounts"
        case .webhooksRead: "See the org's webhook endpoints and deliveries"
        case .webhooksWrite: "Add, change and remove webhook endpoints"
        case .auditRead: "Read the audit trail"
        case .tokensWrite: "Manage API tokens and invitations"
        case .docsRead: "Read the API reference"
        }
    }

    /// Every scope `role` may hold, in the contract's order.
    public static func granted(to role: MemberRole) -> [TokenScope] {
        allCases.filter { role >= $0.minimumRole }
    }

    public static func < (a: TokenScope, b: TokenScope) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The stored form: scope names separated by spaces, in the contract's order.
    public static func stored(_ scopes: Set<TokenScope>) -> String {
        scopes.sorted().map(\.rawValue).joined(separator: " ")
    }

    /// The scopes of a stored value; unknown names (a newer node's) are left out.
    public static func parse(stored: String) -> Set<TokenScope> {
        Set(stored.split(separator: " ").compactMap { TokenScope(rawValue: String($0)) })
    }
}
