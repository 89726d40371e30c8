public import Foundation

/// An unauthenticated route a plugin adds under `/api/v1/`, for callers that cannot hold a
/// bearer token (a payment provider posting a webhook).
///
/// The path names an install in its ``installParameter``. Before the plugin sees anything the
/// host checks that the install exists and is active (else 404), takes one request from the
/// install's rate allowance (else 429 with `Retry-After`) and reads at most
/// ``PublicRouteDefinition/maxBodyBytes`` of body (else 413). The plugin authenticates the
/// request itself, in ``MercatoPlugin/handlePublicRoute(_:_:)``, typically with a signature
/// checked against a secret of the install (``PluginAPI/inboundSecret(of:provider:)``).
public struct PublicRouteDefinition: Sendable {
    /// The most body a public route may accept: 1 MiB.
    public static let maxBodyBytes = 1024 * 1024

    /// The route's method.
    public var method: RouteDefinition.Method
    /// Relative to `/api/v1/`, with `{name}` parameters: `inbound/{install_id}/{provider}`.
    public var path: String
    /// The parameter of ``path`` that holds the install id.
    public var installParameter: String
    /// One line for the route's documentation.
    public var summary: String

    /// An unauthenticated route answering `method` on `/api/v1/<path>` for the install named by
    /// the `installParameter` part of the path.
    public init(_ method: RouteDefinition.Method, _ path: String, installParameter: String, summary: String) {
        self.method = method
        self.path = path
        self.installParameter = installParameter
        self.summary = summary
    }
}

/// A call of a plugin's public route, after the host found the install, took from its rate
/// allowance and read the body within the size limit. Nothing in it is authenticated.
public struct PublicRouteRequest: Sendable {
    /// The method called.
    public var method: RouteDefinition.Method
    /// The route as declared (`inbound/{install_id}/{provider}`).
    public var route: String
    /// The values of the route's `{name}` parameters, by name.
    public var parameters: [String: String]
    /// The request's headers, names in lower case; a repeated header's values joined by `, `.
    public var headers: [String: String]
    /// The body exactly as received (signatures are computed over these bytes).
    public var body: [UInt8]
    /// The install the path names: it exists and is active.
    public var install: InstallInfo
    /// When the host received the request.
    public var receivedAt: Date

    /// A call as the host hands it (tests build them the same way).
    public init(method: RouteDefinition.Method, route: String, parameters: [String: String], headers: [String: String], body: [UInt8],
                install: InstallInfo, receivedAt: Date = Date()) {
        self.method = method
        self.route = route
        self.parameters = parameters
        // The host's names are lower case already (HTTP/2 and HTTPTypes' canonical names): kept as they are.
        self.headers = headers.keys.allSatisfy(Self.isLowerCase) ? headers
            : Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { "\($0), \($1)" })
        self.body = body
        self.install = install
        self.receivedAt = receivedAt
    }

    /// The header `name` (any case), `nil` when absent.
    public func header(_ name: String) -> String? { headers[Self.isLowerCase(name) ? name : name.lowercased()] }

    /// Whether `name` has no upper-case ASCII letter (header names are ASCII), so
    /// `lowercased()` would give the same text.
    static func isLowerCase(_ name: String) -> Bool {
        !name.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }
}

/// The secret an install keeps for one inbound provider (CONTRACT §11), read by the host from
/// the config field the app's manifest names. It never prints: its description is a mask.
public struct InboundSecret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret's text as the org admin pasted it, as UTF-8 bytes.
    public let utf8: [UInt8]

    /// A secret holding `text`.
    public init(_ text: String) { utf8 = Array(text.utf8) }

    /// `********`: a secret is never printed.
    public var description: String { "********" }
    /// `********`: a secret is never printed.
    public var debugDescription: String { "********" }
    /// No children: a dump shows nothing of the secret.
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
