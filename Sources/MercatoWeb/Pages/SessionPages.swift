import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks

/// `/login`, `POST /logout`, `/invite/{token}`.
struct SessionPages {
    let people: PeopleService
    let kit: PageKit

    func register(on pages: RouterGroup<AppRequestContext>) {
        pages.get("login") { request, context in
            let back = PageKit.safeReturnPath(request.uri.queryParameters["return_to"].map(String.init))
            if context.browser != nil { return kit.redirect(back) }
            return kit.page("login", title: "Sign in", context: context, ["returnTo": back])
        }

        pages.post("login") { request, context in
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            let back = PageKit.safeReturnPath(form["return_to"])
            let email = form["email"] ?? ""
            do {
                let token = try await people.signIn(email: email, password: form["password"] ?? "", clientKey: context.clientKey)
                var response = kit.redirect(back)
                response.setCookie(sessionCookie(token))
                return response
            } catch let error as APIError where error.status == 401 {
                return kit.page("login", title: "Sign in", context: context, status: .unauthorized,
                                ["returnTo": back, "email": email, "failure": error.detail])
            }
        }

        pages.post("logout") { request, context in
            if let cookie = request.cookies[PageKit.sessionCookie]?.value { try await people.signOut(cookie: cookie) }
            var response = kit.redirect("/login")
            response.setCookie(Cookie(name: PageKit.sessionCookie, value: "", maxAge: 0, path: "/", secure: kit.secureCookies,
                                      httpOnly: true, sameSite: .lax))
            return response
        }

        pages.get("invite/{token}") { _, context in
            let token = try context.parameters.require("token")
            guard let invitation = try await people.invitation(token: token) else { throw APIError.notFound("Invitation") }
            return kit.page("invite", title: "Join \(invitation.orgName)", context: context, inviteModel(invitation, token: token))
        }

        pages.post("invite/{token}") { request, context in
            let token = try context.parameters.require("token")
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            guard let invitation = try await people.invitation(token: token) else { throw APIError.notFound("Invitation") }
            do {
                let session = try await people.accept(token: token, name: form["name"] ?? "", email: form["email"], password: form["password"] ?? "")
                var response = kit.redirect("/marketplace?done=welcome")
                response.setCookie(sessionCookie(session))
                return response
            } catch let error as APIError where !error.errors.isEmpty {
                var model = inviteModel(invitation, token: token)
                model["name"] = form["name"] ?? ""
                model["emailValue"] = form["email"] ?? ""
                for problem in error.errors { model["error_" + problem.field] = problem.message }
                return kit.page("invite", title: "Join \(invitation.orgName)", context: context, status: .unprocessableContent, model)
            }
        }
    }

    private func inviteModel(_ invitation: InvitationView, token: String) -> [String: Any] {
        var model: [String: Any] = ["orgName": invitation.orgName, "role": invitation.role.rawValue, "token": token]
        if let email = invitation.email { model["invitedEmail"] = email } else { model["askEmail"] = true }
        return model
    }

    private func sessionCookie(_ token: String) -> Cookie {
        Cookie(name: PageKit.sessionCookie, value: token, maxAge: Int(PeopleService.absoluteLifetime / 1000), path: "/",
               secure: kit.secureCookies, httpOnly: true, sameSite: .lax)
    }
}
