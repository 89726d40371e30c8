import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// `/settings/tokens` (owner): the org's API tokens; create (scopes, expiry, hourly limit; the
/// text shown once), revoke, and each token's usage. Through `TenancyService`, as the API.
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
            let chosen = form.values["scopes"] ?? []
            let day = (form["expires_on"] ?? "").trimmingCharacters(in: .whitespaces)
            let limitText = (form["hourly_limit"] ?? "").trimmingCharacters(in: .whitespaces)
            var problems: [String: String] = [:]
            if name.isEmpty || name.count > 100 { problems["nameError"] = "Give the token a name (1 to 100 characters)." }
            if role == nil { problems["roleError"] = "Choose a role." }
            let limit = limitText.isEmpty ? nil : Int(limitText)
            if !limitText.isEmpty && limit == nil { problems["limitError"] = "Write the limit as a whole number, or leave it empty." }
            if let role, problems.isEmpty {
                // The date field gives a day: the token stops working at its start (UTC).
                let options = TokenOptions(scopes: chosen.isEmpty ? nil : chosen, expiresAt: day.isEmpty ? nil : day + "T00:00:00Z", hourlyLimit: limit)
                do {
                    let (record, text) = try await runtime.tenancy.createToken(in: session.orgID, name: name, role: role, options: options,
                                                                               by: session.principal, requestID: context.requestID)
                    return kit.page("developer-secrets", title: "New API token", context: context, nav: "tokens", [
                        "heading": "API token “\(record.name)” (\(record.role))", "continueURL": "/settings/tokens", "continueText": "Back to API tokens",
                        "secrets": [["kind": "API token", "value": text, "id": "secret-token"]],
                        "warning": "Copy the token now: it is shown on this page only and cannot be read again. Keep it in a secret store.",
                    ])
                } catch let error as APIError where error.status == 422 {
                    for problem in error.errors {
                        switch problem.field {
                        case "scopes": problems["scopesError"] = "Some chosen permissions are beyond the \(role.rawValue) role: \(problem.message)."
                        case "expires_at": problems["expiryError"] = "Choose a day in the future, or leave it empty."
                        case "hourly_limit": problems["limitError"] = "The limit \(problem.message)."
                        default: problems["nameError"] = problem.message
                        }
                    }
                }
            }
            var model = try await listModel(session, role: role, chosen: Set(chosen))
            model["name"] = form["name"] ?? ""
            model["expiresOn"] = day
            model["hourlyLimit"] = limitText
            for (key, value) in problems { model[key] = value }
            return kit.page("tokens", title: "API tokens", context: context, status: .unprocessableContent, nav: "tokens", model)
        }

        pages.post("settings/tokens/{id}/revoke") { request, context in
            let session = try kit.requireSession(context, request: request)
            try await runtime.tenancy.revokeToken(try context.parameters.require("id"), in: session.orgID, by: session.principal,
                                                  requestID: context.requestID)
            return kit.redirect("/settings/tokens?done=revoked")
        }

        pages.get("settings/tokens/{id}/usage") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            let cursor = request.uri.queryParameters["cursor"].map(String.init)
            let (rows, next) = try await runtime.tenancy.usage(of: id, in: session.orgID, by: session.principal, cursor: cursor, limit: 50)
            let token = try await runtime.tenancy.tokens(in: session.orgID, by: session.principal).first { $0.id == id }
            let model: [String: Any] = [
                "tokenName": token?.name ?? id,
                "rows": rows.map { ["at": MarketplacePages.time($0.at), "method": $0.method, "path": $0.path, "status": $0.status, "requestID": $0.requestId] },
                "empty": rows.isEmpty,
                "nextURL": next.map { "/settings/tokens/\(id)/usage?cursor=\($0)" } ?? "",
            ]
            return kit.page("token-usage", title: "API token usage", context: context, nav: "tokens", model)
        }
    }

    private func listModel(_ session: BrowserSession, role: MemberRole? = nil, chosen: Set<String> = []) async throws -> [String: Any] {
        let tokens = try await runtime.tenancy.tokens(in: session.orgID, by: session.principal)
        let org = try await runtime.tenancy.org(session.orgID, visibleTo: session.principal)
        let fallback = runtime.tenancy.defaultHourlyLimit(of: org)
        let rows: [[String: Any]] = tokens.map { token in
            let scopes = TokenGrant.scopes(stored: token.scopes, role: MemberRole(rawValue: token.role) ?? .member).sorted()
            var row: [String: Any] = [
                "id": token.id, "name": token.name, "role": token.role, "created": MarketplacePages.time(token.createdAt),
                "scopes": token.scopes == nil ? "Everything the role may do" : scopes.map(\.label).joined(separator: "; "),
                "expires": token.expiresAt.map(MarketplacePages.time) ?? "Never",
                "lastUsed": token.lastUsedAt.map(MarketplacePages.time) ?? "Not yet",
                "hourlyLimit": (token.hourlyLimit ?? fallback).formatted(),
            ]
            if let revoked = token.revokedAt { row["revoked"] = MarketplacePages.time(revoked) } else { row["live"] = true }
            return row
        }
        let selected = role ?? .member
        return ["tokens": rows, "empty": rows.isEmpty, "defaultLimit": fallback.formatted(),
                "roles": MemberRole.allCases.map { ["value": $0.rawValue, "selected": $0 == selected] },
                "scopeChoices": TokenScope.allCases.map { ["value": $0.rawValue, "label": $0.label, "checked": chosen.contains($0.rawValue),
                                                           "id": "scope-" + $0.rawValue.replacingOccurrences(of: ":", with: "-")] }]
    }
}
