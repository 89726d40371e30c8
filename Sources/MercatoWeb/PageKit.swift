import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MercatoCore
import MercatoHTTP
import MercatoHooks
import NIOCore

/// What every page handler shares: rendering in the layout, redirects, the session guard, the
/// error pages and the security headers.
struct PageKit: Sendable {
    static let sessionCookie = "mercato_session"
    static let csrfCookie = "mercato_csrf"

    let renderer: PageRenderer
    let secureCookies: Bool
    let contentSecurityPolicy: String
    let logger: Logger

    init(renderer: PageRenderer, settings: Settings, logger: Logger) {
        self.renderer = renderer
        self.secureCookies = settings.publicURL.lowercased().hasPrefix("https://")
        let ancestors = settings.frameAncestors.isEmpty ? "'self'" : settings.frameAncestors.joined(separator: " ")
        self.contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors \(ancestors)"
        self.logger = logger
    }

    /// `template` in the layout with `model`, plus what the layout needs (title, the signed-in
    /// person, the CSRF token every form carries).
    func page(_ template: String, title: String, context: AppRequestContext, status: HTTPResponse.Status = .ok,
              nav: String? = nil, _ model: [String: Any] = [:]) -> Response {
        var model = model
        model["title"] = title
        model["csrf"] = context.csrfToken
        if let browser = context.browser {
            var who: [String: Any] = ["userName": browser.name, "orgName": browser.orgName, "role": browser.role.rawValue]
            if let nav { who["nav_" + nav] = true }
            if browser.role >= .developer { who["isDeveloper"] = true }
            if browser.role >= .admin { who["isAdmin"] = true }
            if browser.role == .owner { who["isOwner"] = true }
            model["signedIn"] = who
        }
        let html = renderer.render(template, model)
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A 303 to a path of this site.
    func redirect(_ path: String) -> Response {
        Response(status: .seeOther, headers: [.location: path])
    }

    /// The signed-in person, or a redirect to the sign-in page that comes back here.
    func requireSession(_ context: AppRequestContext, request: Request) throws -> BrowserSession {
        guard let browser = context.browser else { throw SignInNeeded(returnTo: request.uri.path) }
        return browser
    }

    /// `path` when it is a path on this origin (not `//host`, not a scheme), else `fallback`.
    static func safeReturnPath(_ path: String?, fallback: String = "/marketplace") -> String {
        guard let path, path.hasPrefix("/"), !path.hasPrefix("//"), !path.hasPrefix("/\\"), path.utf8.count <= 512,
              path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\\" })
        else { return fallback }
        return path
    }

    func addSecurityHeaders(_ headers: inout HTTPFields) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[.referrerPolicy] = "same-origin"
        headers[.crossOriginOpenerPolicy] = "same-origin"
        if headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
    }

    /// An error as a page in the layout: the status and a sentence, nothing internal.
    func errorPage(_ error: any Error, context: AppRequestContext, request: Request) -> Response {
        if let needed = error as? SignInNeeded {
            let back = Self.safeReturnPath(needed.returnTo)
            return redirect("/login?return_to=" + (back.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        }
        var status = 500
        var title = "Something went wrong"
        var detail = "The page could not be shown. Try again in a moment."
        var headers: [String: String] = [:]
        switch error {
        case let error as APIError:
            status = error.status
            headers = error.headers
            switch error.status {
            case 404: (title, detail) = ("Not found", "There is nothing here, or it belongs to another organisation.")
            case 500...: break
            default: (title, detail) = (error.title, error.detail)
            }
        case let error as HTTPError:
            status = Int(error.status.code)
            if status == 404 { (title, detail) = ("Not found", "There is nothing here, or it belongs to another organisation.") }
            else if status < 500 { (title, detail) = (error.status.reasonPhrase, "The request could not be handled.") }
        default:
            break
        }
        if status >= 500 {
            logger.error("page failed", metadata: ["error_type": .string(String(reflecting: type(of: error))), "request_id": .string(context.requestID)])
        }
        var response = page("error", title: title, context: context, status: HTTPResponse.Status(code: status),
                            ["status": status, "heading": title, "detail": detail, "requestID": context.requestID])
        for (name, value) in headers {
            if let field = HTTPField.Name(name), name.lowercased() == "retry-after" { response.headers[field] = value }
        }
        return response
    }
}

/// Thrown by a page that needs a signed-in person: the middleware redirects to `/login`.
struct SignInNeeded: Error {
    let returnTo: String
}

extension HTTPField.Name {
    static let referrerPolicy = Self("Referrer-Policy")!
    static let crossOriginOpenerPolicy = Self("Cross-Origin-Opener-Policy")!
}
