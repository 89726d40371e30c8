public import Foundation
public import Logging

/// A role in an org, from least to most; the host checks it before a plugin route runs.
public enum MemberRole: String, Sendable, Comparable, CaseIterable, Codable {
    case member, developer, admin, owner

    public static func < (a: MemberRole, b: MemberRole) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// An HTTP route a plugin adds to the management API, under `/api/v1/`. The host mounts it
/// behind bearer authentication, checks the caller's role, and hands the plugin the caller's
/// org; another org's data is never reachable through it.
public struct RouteDefinition: Sendable {
    public enum Method: String, Sendable { case get = "GET", post = "POST", put = "PUT", delete = "DELETE" }

    public var method: Method
    /// Relative to `/api/v1/`, with `{name}` parameters: `notifications/{id}/dismiss`.
    public var path: String
    /// The least role that may call it.
    public var minimumRole: MemberRole
    public var summary: String

    public init(_ method: Method, _ path: String, minimumRole: MemberRole, summary: String) {
        self.method = method
        self.path = path
        self.minimumRole = minimumRole
        self.summary = summary
    }
}

/// The org a route or an activity is about.
public struct OrgInfo: Sendable, Equatable {
    public var id: String
    public var name: String
    /// `free`, `pro` or `enterprise`.
    public var plan: String

    public init(id: String, name: String, plan: String) {
        self.id = id
        self.name = name
        self.plan = plan
    }
}

/// A call of a plugin route, after the host authenticated the caller and checked the role.
public struct RouteRequest: Sendable {
    public var method: RouteDefinition.Method
    /// The route as declared (`notifications/{id}/dismiss`).
    public var route: String
    public var parameters: [String: String]
    public var query: [String: String]
    /// The JSON body, `nil` when there is none.
    public var body: JSONValue?
    public var org: OrgInfo
    /// The caller's principal id (`usr_...`) and role in ``org``.
    public var callerID: String
    public var callerRole: MemberRole

    public init(method: RouteDefinition.Method, route: String, parameters: [String: String] = [:], query: [String: String] = [:],
                body: JSONValue? = nil, org: OrgInfo, callerID: String, callerRole: MemberRole) {
        self.method = method
        self.route = route
        self.parameters = parameters
        self.query = query
        self.body = body
        self.org = org
        self.callerID = callerID
        self.callerRole = callerRole
    }
}

/// What a plugin route answers: JSON, or a file download (CSV export, ...).
public enum RouteResponse: Sendable, Equatable {
    case json(JSONValue, status: Int = 200)
    case file(Data, contentType: String, filename: String)
}

/// Per-call context of an org-level call (a route, an activity): the org's storage of this
/// plugin across its installs, plus the org's own namespace.
public struct OrgContext: Sendable {
    public var requestID: String?
    public var logger: Logger
    public var api: any PluginAPI
    public var org: OrgInfo
    public var storage: any OrgStorage

    public init(requestID: String?, logger: Logger, api: any PluginAPI, org: OrgInfo, storage: any OrgStorage) {
        self.requestID = requestID
        self.logger = logger
        self.api = api
        self.org = org
        self.storage = storage
    }
}

/// One stored key of a plugin, with the install it belongs to (`nil` for the org's own namespace).
public struct StoredEntry: Sendable, Equatable {
    public var installID: String?
    public var key: String
    public var value: StoredValue

    public init(installID: String?, key: String, value: StoredValue) {
        self.installID = installID
        self.key = key
        self.value = value
    }
}

/// A plugin's data across one org: the per-install namespaces (read across, written one at a
/// time) and the org's own namespace, which uninstalls do not touch.
public protocol OrgStorage: Sendable {
    /// Entries under `prefix` in every install namespace of this org, by key (descending when
    /// `newestFirst`), strictly past `after` in that order, at most `limit`.
    func entries(prefix: String, after: String?, limit: Int, newestFirst: Bool) async throws -> [StoredEntry]
    /// The first entry with exactly `key` in any install namespace of this org.
    func find(_ key: String) async throws -> StoredEntry?
    /// The namespace of one install of this org, to write in.
    func install(_ installID: String) -> any PluginStorage
    /// The org's own namespace: kept until the org is gone, whatever is uninstalled.
    var own: any PluginStorage { get }
}

/// An admin or lifecycle action the host recorded in the change's transaction; plugins see it
/// once it committed (at least once, so key what you keep by ``id``).
public struct Activity: Sendable, Equatable {
    /// Stable across redeliveries (`aud_...`).
    public var id: String
    /// `app.installed`, `install.config_updated`, `token.created`, ...
    public var action: String
    /// The principal or token that acted (`usr_...`, `tok_...`, `operator`).
    public var actor: String
    /// What it acted on (`ins_...`, `tok_...`, an app key).
    public var target: String
    public var requestID: String?
    /// Non-secret facts: field names, versions, statuses. Never values of secret fields.
    public var details: JSONValue
    public var occurredAt: Date

    public init(id: String, action: String, actor: String, target: String, requestID: String?, details: JSONValue, occurredAt: Date) {
        self.id = id
        self.action = action
        self.actor = actor
        self.target = target
        self.requestID = requestID
        self.details = details
        self.occurredAt = occurredAt
    }
}
