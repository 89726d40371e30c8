import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// `/settings/tokens` (owner): the org's API tokens; create (the text shown once), revoke.
/// Through `TenancyService`, as the API.
struct TokenPages {
    let runtime: MercatoRuntime
    let kit: PageKit

    func register(on pages: RouterGroup<AppRequestContext>) {
        pages.get("settings/tokens") { request, context in
            let session = try kit.requireSession(context, request: request)
            var model = try await listModel(session)
            if request.uri.queryParameters["done"] == "revoked" { model["flash"] = ["kind": "ok", "text": "The token is revoked."] }
            return kit.page("tokens", title: "API tokens", context: context, nav: "tokens", model)
        }

        pages.post("settings/tokens") { request, context in
            let session = try kit.requireSession(context, request: request)
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            let name = (form["name"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let role = MemberRole(rawValue: form["role"] ?? "")
            guard !name.isEmpty, name.count <= 100, let role else {
                var model = try await listModel(session)
                model["name"] = form["name"] ?? ""
                if name.isEmpty || name.count > 100 { model["nameError"] = "Give the token a name (1 to 100 characters)." }
                if role == nil { model["roleError"] = "Choose a role." }
                return kit.page("tokens", title: "API tokens", context: context, status: .unprocessableContent, nav: "tokens", model)
            }
            let (record, text) = try await runtime.tenancy.createToken(in: session.orgID, name: name, role: role, by: session.principal,
                                                                       requestID: context.requestID)
            return kit.page("developer-secrets", title: "New API token", context: context, nav: "tokens", [
                "heading": "API token “\(record.name)” (\(record.role))", "continueURL": "/settings/tokens", "continueText": "Back to API tokens",
                "secrets": [["kind": "API token", "value": text, "id": "secret-token"]],
                "warning": "Copy the token now: it is shown on this page only and cannot be read again. Keep it in a secret store.",
            ])
        }

        pages.post("settings/tokens/{id}/revoke") { request, context in
            let session = try kit.requireSession(context, request: request)
            try await runtime.tenancy.revokeToken(try context.parameters.require("id"), in: session.orgID, by: session.principal,
                                                  requestID: context.requestID)
            return kit.redirect("/settings/tokens?done=revoked")
        }
    }

    private func listModel(_ session: BrowserSession) async throws -> [String: Any] {
        let tokens = try await runtime.tenancy.tokens(in: session.orgID, by: session.principal)
        let rows: [[String: Any]] = tokens.map { token in
            var row: [String: Any] = ["id": token.id, "name": token.name, "role": token.role, "created": MarketplacePages.time(token.createdAt)]
            if let revoked = token.revokedAt { row["revoked"] = MarketplacePages.time(revoked) } else { row["live"] = true }
            return row
        }
        return ["tokens": rows, "empty": rows.isEmpty,
                "roles": ["member", "developer", "admin", "owner"].map { ["value": $0, "selected": $0 == "member"] }]
    }
}
