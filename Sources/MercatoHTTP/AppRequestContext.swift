public import Foundation
public import Hummingbird
public import Logging
import NIOCore
public import MercatoCore

/// Request-scoped data, typed: the request id and, once authenticated, the caller.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The `X-Request-Id` of this request (echoed or generated).
    public var requestID: String = ""
    /// Who is calling once authenticated (an API token's id, a browser session's), for the
    /// request's log lines.
    public var caller: String?
    /// The authenticated caller; set by ``BearerAuthMiddleware``.
    public var principal: Principal?
    /// What the caller's API token may do (scopes, hourly limit); set by ``BearerAuthMiddleware``,
    /// `nil` on pages (a browser session is not narrowed by scopes).
    public var grant: TokenGrant?
    /// Where the token's rate headers and usage are noted for the outermost middleware.
    var tokenUse: TokenUse?
    /// The signed-in browser, on pages (set by MercatoWeb's session middleware).
    public var browser: BrowserSession?
    /// The CSRF token the page's forms carry (MercatoWeb).
    public var csrfToken: String = ""
    /// The connection, read only when a caller's address is needed.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.baseLogger = source.logger
        self.channel = source.channel
    }

    /// The request's logger: Hummingbird's with this request's `request_id` and, once known,
    /// its `caller`. Made when a line is to be written rather than for every request: each key
    /// added copies the logger's handler and its metadata (a few allocations a request).
    public var logger: Logger {
        get {
            var logger = baseLogger
            if !requestID.isEmpty { logger[metadataKey: "request_id"] = .string(requestID) }
            if let caller { logger[metadataKey: "caller"] = .string(caller) }
            return logger
        }
        set { baseLogger = newValue }
    }
    /// Hummingbird's logger for this request as it came, without the keys above (for callers
    /// that add the request id themselves when they write: the plugin host).
    public private(set) var baseLogger: Logger

    /// The caller's address as a rate-limit key (see ``ClientAddress``).
    public var clientKey: String { ClientAddress.key(channel.remoteAddress) }

    /// Management API bodies (manifests included) stay well under 1 MiB.
    public var maxUploadSize: Int { 1 << 20 }

    public var requestDecoder: JSONDecoder { JSONCoding.decoder }
    public var responseEncoder: JSONEncoder { JSONCoding.encoder }

    /// The caller, or 401 when the route was reached without authentication.
    public func requirePrincipal() throws -> Principal {
        guard let principal else { throw APIError.unauthenticated("This route needs `Authorization: Bearer <api token>`.") }
        return principal
    }
}
