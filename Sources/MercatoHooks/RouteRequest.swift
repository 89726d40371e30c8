/// A call of a plugin route, after the host authenticated the caller and checked the role.
public struct RouteRequest: Sendable {
    /// The method called.
    public var method: RouteDefinition.Method
    /// The route as declared (`notifications/{id}/dismiss`).
    public var route: String
    /// The values of the route's `{name}` parameters, by name.
    public var parameters: [String: String]
    /// The query string's values, by name.
    public var query: [String: String]
    /// The JSON body, `nil` when there is none.
    public var body: JSONValue?
    /// The caller's org: the only org the call may touch.
    public var org: OrgInfo
    /// The caller's principal id (`usr_...`) and role in ``org``.
    public var callerID: String
    /// The caller's role in ``org``, at least the route's ``RouteDefinition/minimumRole``.
    public var callerRole: MemberRole

    /// A call as the host hands it.
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
