/// An HTTP route a plugin adds to the management API, under `/api/v1/`.
///
/// The host mounts it behind bearer authentication, checks the caller's role, and hands the
/// plugin the caller's org; another org's data is never reachable through it. The plugin
/// answers it in ``MercatoPlugin/handleRoute(_:_:)``. See <doc:RoutesAndOrgs>.
public struct RouteDefinition: Sendable {
    /// The HTTP methods a route may have.
    public enum Method: String, Sendable {
        /// `GET`: reads.
        case get = "GET"
        /// `POST`: creates or acts.
        case post = "POST"
        /// `PUT`: replaces.
        case put = "PUT"
        /// `DELETE`: removes.
        case delete = "DELETE"
    }

    /// The route's method.
    public var method: Method
    /// Relative to `/api/v1/`, with `{name}` parameters: `notifications/{id}/dismiss`.
    public var path: String
    /// The least role that may call it.
    public var minimumRole: MemberRole
    /// One line for the route's documentation.
    public var summary: String

    /// A route answering `method` on `/api/v1/<path>` to callers of at least `minimumRole`.
    public init(_ method: Method, _ path: String, minimumRole: MemberRole, summary: String) {
        self.method = method
        self.path = path
        self.minimumRole = minimumRole
        self.summary = summary
    }
}
