import Foundation
import HTTPTypes
import Logging
import Hummingbird
import MercatoCore

/// Turns `Authorization: Bearer <api token>` into the context's ``AppRequestContext/principal``;
/// anything else answers 401 `unauthenticated` with a `WWW-Authenticate` challenge.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let tenancy: TenancyService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw Self.challenge("This route needs `Authorization: Bearer <api token>`.", error: nil)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.first?.lowercased() == "bearer" else {
            throw Self.challenge("The Authorization header must use the Bearer scheme.", error: "invalid_request")
        }
        let token = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        guard !token.isEmpty else {
            throw Self.challenge("The Bearer token is empty.", error: "invalid_request")
        }
        guard let principal = try await tenancy.authenticate(token: token) else {
            throw Self.challenge("The API token is not valid or has been revoked.", error: "invalid_token")
        }
        var context = context
        context.principal = principal
        context.logger[metadataKey: "caller"] = .string(principal.tokenID)
        return try await next(request, context)
    }

    private static func challenge(_ detail: String, error: String?) -> APIError {
        var challenge = "Bearer realm=\"mercato\""
        if let error { challenge += ", error=\"\(error)\"" }
        return APIError(status: 401, code: "unauthenticated", title: "Authentication required", detail: detail, headers: ["WWW-Authenticate": challenge])
    }
}
