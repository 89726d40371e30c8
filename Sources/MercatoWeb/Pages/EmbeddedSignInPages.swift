import Foundation
import Hummingbird
import JWTKit
import MercatoCore
import MercatoHTTP
import MercatoHooks

/// `GET /sso/jwt?token=<JWT>&return_to=<path>` (CONTRACT §8): the host SaaS signs its user in.
/// jwt-kit checks the HS256 signature with `MERCATO_SSO_SECRET`; ``PeopleService`` checks the
/// times, the single use of `jti`, the org and the role, and starts the session. Any refusal is
/// a 401 page that starts nothing.
struct EmbeddedSignInPages {
    let people: PeopleService
    let kit: PageKit
    let secret: [UInt8]?
    /// Longer tokens are refused before parsing.
    static let maxTokenSize = 8 * 1024

    /// The claims of CONTRACT §8. Times are checked by ``PeopleService/signInEmbedded(_:requestID:)``
    /// against the server's clock, so ``verify(using:)`` has nothing left to check.
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var email: String
        var name: String
        var org: String
        var role: String
        var iat: IssuedAtClaim
        var exp: ExpirationClaim
        var jti: IDClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    func register(on pages: RouterGroup<AppRequestContext>) {
        pages.get("sso/jwt") { request, context in
            let query = request.uri.queryParameters
            let back = PageKit.safeReturnPath(query["return_to"].map(String.init))
            let token = query["token"].map(String.init) ?? ""
            let identity = try await verify(token)
            let session = try await people.signInEmbedded(identity, requestID: context.requestID)
            // A session this browser already had (perhaps another person's) ends here.
            if let previous = request.cookies[PageKit.sessionCookie]?.value { try await people.signOut(cookie: previous) }
            var response = kit.redirect(back)
            response.setCookie(Cookie(name: PageKit.sessionCookie, value: session, maxAge: Int(PeopleService.absoluteLifetime / 1000), path: "/",
                                      secure: kit.secureCookies, httpOnly: true, sameSite: .lax))
            return response
        }
    }

    /// The token's claims once its signature and algorithm are checked; 401 otherwise.
    private func verify(_ token: String) async throws -> EmbeddedIdentity {
        guard let secret else {
            throw refused("Embedded sign-in is not set up on this server (the operator sets MERCATO_SSO_SECRET).")
        }
        guard !token.isEmpty, token.utf8.count <= Self.maxTokenSize else { throw refused("The sign-in link carries no valid token.") }
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self)
            // jwt-kit checks the signature with the key it holds; the header must also say so.
            guard try DefaultJWTParser().parse([UInt8](token.utf8), as: Claims.self).header.alg == "HS256" else {
                throw refused("The sign-in link carries no valid token.")
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw refused("The sign-in link carries no valid token.")
        }
        return EmbeddedIdentity(subject: claims.sub.value, email: claims.email, name: claims.name, org: claims.org, role: claims.role,
                                issuedAt: Self.millis(claims.iat.value), expiresAt: Self.millis(claims.exp.value), tokenID: claims.jti.value)
    }

    private static func millis(_ date: Date) -> Int64 {
        let value = date.timeIntervalSince1970 * 1000
        guard value.isFinite, abs(value) < 1e15 else { return 0 }
        return Int64(value)
    }

    private func refused(_ detail: String) -> APIError {
        APIError(status: 401, code: "sso_failed", title: "Sign-in link not accepted", detail: detail)
    }
}
