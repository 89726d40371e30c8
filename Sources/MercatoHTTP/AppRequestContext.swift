public import Foundation
public import Hummingbird
import NIOCore
public import MercatoCore

/// Request-scoped data, typed: the request id and, once authenticated, the caller.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The `X-Request-Id` of this request (echoed or generated).
    public var requestID: String = ""
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
        self.channel = source.channel
    }

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
