import Foundation
import HTTPTypes
import Logging
import Hummingbird
import MercatoCore
import MercatoHooks

/// Turns `Authorization: Bearer <api token>` into the context's ``AppRequestContext/principal``;
/// anything else answers 401 `unauthenticated` with a `WWW-Authenticate` challenge. Then the
/// matched route's scope (``RouteScopes``) must be one of the token's: 403 `token_scope_missing`
/// otherwise, before the handler runs. Before that the token's hourly limit (``TokenLimits``):
/// 429 `rate_limited` with `Retry-After` past it; ``RequestMiddleware`` puts the `RateLimit-*`
/// headers on the final answer and hands its usage row to ``TokenUsageLog``.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let tenancy: TenancyService
    let limits: TokenLimits

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw Self.challenge("This route needs `Authorization: Bearer <api token>`.", error: nil)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.first?.lowercased() == "bearer" else {
            throw Self.challenge("The Authorization header must use the Bearer scheme.", error: "invalid_request")
        }
        let token = parts.count == 2 ? String(PluginSupport.trimmingBlanks(parts[1])) : ""
        guard !token.isEmpty else {
            throw Self.challenge("The Bearer token is empty.", error: "invalid_request")
        }
        guard let grant = try await tenancy.grant(for: token) else {
            throw Self.challenge("The API token is not valid, has expired or has been revoked.", error: "invalid_token")
        }
        var context = context
        context.principal = grant.principal
        context.grant = grant
        context.caller = grant.principal.tokenID
        // The hourly limit counts every authenticated request, refused ones included.
        let allowance = try await limits.take(token: grant.principal.tokenID, limit: grant.hourlyLimit)
        context.tokenUse?.note(tokenID: grant.principal.tokenID, headers: allowance.headers)
        guard allowance.allowed else {
            throw APIError(status: 429, code: "rate_limited", title: "Too many requests",
                           detail: "This API token has used its \(allowance.limit) requests of this hour; retry when the hour ends.",
                           headers: ["Retry-After": String(allowance.resetSeconds)])
        }
        try Self.checkScope(grant, method: request.method.rawValue, route: context.endpointPath)
        return try await next(request, context)
    }

    /// 403 `token_scope_missing` naming the scope when the route needs one the token's role
    /// grants but the token was not given. A scope beyond the role is the route's role check to
    /// refuse (403 `forbidden`), as for a token without scopes of its own.
    static func checkScope(_ grant: TokenGrant, method: String, route: String?) throws {
        guard let route, let needed = RouteScopes.required(method, route), !grant.scopes.contains(needed) else { return }
        if case .member(_, _, _, let role) = grant.principal, role < needed.minimumRole { return }
        throw APIError(status: 403, code: "token_scope_missing", title: "Token scope missing",
                       detail: "This API token lacks the `\(needed.rawValue)` scope that `\(method) \(route)` needs.")
    }

    private static func challenge(_ detail: String, error: String?) -> APIError {
        var challenge = "Bearer realm=\"mercato\""
        if let error { challenge += ", error=\"\(error)\"" }
        return APIError(status: 401, code: "unauthenticated", title: "Authentication required", detail: detail, headers: ["WWW-Authenticate": challenge])
    }
}
