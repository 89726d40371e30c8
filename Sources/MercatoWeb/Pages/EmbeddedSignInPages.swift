import Foundation
import Hummingbird
import JWTKit
import MercatoCore
import MercatoHTTP
import MercatoHooks

/// `GET /sso/jwt?token=<JWT>&return_to=<path>` (CONTRACT §8): the host SaaS signs its user in.
/// jwt-kit checks the signature: HS256 with `MERCATO_SSO_SECRET`, or EdDSA with the host's
/// public key `MERCATO_SSO_PUBLIC_KEY`, as the token's header says; ``PeopleService`` checks the
/// times, the single use of `jti`, the org and the role, and starts the session. Any refusal is
/// a 401 page that starts nothing.
struct EmbeddedSignInPages {
    let people: PeopleService
    let kit: PageKit
    let secret: [UInt8]?
    /// The host's Ed25519 public key (raw 32 bytes).
    let publicKey: [UInt8]?
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
        guard secret != nil || publicKey != nil else {
            throw refused("Embedded sign-in is not set up on this server (the operator sets MERCATO_SSO_SECRET or MERCATO_SSO_PUBLIC_KEY).")
        }
        guard !token.isEmpty, token.utf8.count <= Self.maxTokenSize else { throw refused("The sign-in link carries no valid token.") }
        let claims: Claims
        do {
            // The header (read by jwt-kit's parser, nothing trusted yet) picks the key; jwt-kit
            // then checks the signature with that key alone.
            let keys = JWTKeyCollection()
            switch try DefaultJWTParser().parse([UInt8](token.utf8), as: Claims.self).header.alg {
            case "HS256"?:
                guard let secret else { throw refused("This server accepts EdDSA sign-in tokens only (HS256 needs MERCATO_SSO_SECRET).") }
                await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            case "EdDSA"?:
                guard let publicKey else { throw refused("This server accepts HS256 sign-in tokens only (EdDSA needs MERCATO_SSO_PUBLIC_KEY).") }
                await keys.add(eddsa: try EdDSA.PublicKey(x: Self.base64URL(publicKey), curve: .ed25519))
            default:
                throw refused("The sign-in link carries no valid token.")
            }
            claims = try await keys.verify(token, as: Claims.self)
        } catch let error as APIError {
            throw error
        } catch {
            throw refused("The sign-in link carries no valid token.")
        }
        return EmbeddedIdentity(subject: claims.sub.value, email: claims.email, name: claims.name, org: claims.org, role: claims.role,
                                issuedAt: Self.millis(claims.iat.value), expiresAt: Self.millis(claims.exp.value), tokenID: claims.jti.value)
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
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
