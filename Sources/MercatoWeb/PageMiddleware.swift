import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MercatoCore
import MercatoCrypto
import MercatoHTTP
import NIOCore

/// Runs around every page: reads the session cookie into the context, gives the page its CSRF
/// token and checks it on every POST (403 page, the handler never runs), turns errors into
/// pages in the layout, and adds the security headers of CONTRACT §8 to every answer.
struct PageMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let people: PeopleService
    let pages: PageKit
    /// Form bodies stay small.
    static let maxFormSize = 256 * 1024
    /// A form that uploads a file (`multipart/form-data`) may be larger; each handler limits
    /// its own files (a manifest: ``DeveloperPages/manifestLimit``).
    static let maxUploadSize = 1024 * 1024

    /// The body, or a 413 page when it is larger than `limit` (announced or not).
    static func collect(_ request: inout Request, upTo limit: Int) async throws -> ByteBuffer {
        let tooLarge = APIError(status: 413, code: "payload_too_large", title: "Too large to send",
                                detail: "What this form sent is larger than \(limit / 1024) KiB. Send less, or a smaller file.")
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit { throw tooLarge }
        do {
            return try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let cookies = request.cookies
        var csrfSeed: String?
        if let cookie = cookies[PageKit.sessionCookie]?.value, let session = try await people.session(cookie: cookie) {
            context.browser = session
            context.principal = session.principal
            context.caller = session.id
            csrfSeed = cookie
        }
        var newCSRFCookie: String?
        if csrfSeed == nil {
            if let value = cookies[PageKit.csrfCookie]?.value, value.utf8.count == 43 {
                csrfSeed = value
            } else {
                let fresh = BrowserSecret.generate()
                newCSRFCookie = fresh
                csrfSeed = fresh
            }
        }
        context.csrfToken = BrowserSecret.digest(csrfSeed ?? "", purpose: "csrf")

        var response: Response
        do {
            var request = request
            if request.method == .post {
                let contentType = request.headers[.contentType]
                let multipart = contentType.flatMap(FormData.multipartBoundary) != nil
                let body = try await Self.collect(&request, upTo: multipart ? Self.maxUploadSize : Self.maxFormSize)
                let sent = FormData(buffer: body, contentType: contentType)["csrf_token"] ?? ""
                guard newCSRFCookie == nil, ConstantTime.equals(Array(sent.utf8), Array(context.csrfToken.utf8)) else {
                    throw APIError(status: 403, code: "csrf_failed", title: "This form cannot be sent",
                                   detail: "The form had expired or did not come from this site. Go back, reload the page and try again.")
                }
            }
            response = try await next(request, context)
        } catch {
            response = pages.errorPage(error, context: context, request: request)
        }
        if let newCSRFCookie {
            response.setCookie(Cookie(name: PageKit.csrfCookie, value: newCSRFCookie, path: "/", secure: pages.secureCookies,
                                      httpOnly: true, sameSite: .lax))
        }
        pages.addSecurityHeaders(&response.headers)
        return response
    }
}
