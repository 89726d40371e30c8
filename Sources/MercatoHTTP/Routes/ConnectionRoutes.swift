import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoHooks
import MercatoStorage

/// OAuth (CONTRACT §2 and §6): providers, the connect flow, an install's connection, and the
/// page a connect flow ends on.
struct ConnectionRoutes {
    let providers: ProviderService
    let flow: ConnectFlow
    /// With the browser pages: a signed-in browser that lands on `/oauth/complete` goes on to
    /// the install's app page (`/installs/{id}/connected`, MercatoWeb), which shows the result.
    var pagesLanding = false

    struct ProviderBody: ResponseEncodable {
        let key: String
        let name: String
        let authorizeUrl: String
        let tokenUrl: String
        let revokeUrl: String?
        let userinfoUrl: String?
        let scopes: [String]
        let scopeSeparator: String
        let pkce: Bool
        let tokenAuthMethod: String
        let accountIdField: String?
        let accountNameField: String?
        let authorizeParams: [String: String]
        let clientId: String?
        let clientSecretSet: Bool
        let configured: Bool
        let source: String
        let updatedAt: Date

        init(_ v: ProviderService.View) {
            let d = v.definition
            key = d.key
            name = d.name
            authorizeUrl = d.authorizeURL
            tokenUrl = d.tokenURL
            revokeUrl = d.revokeURL
            userinfoUrl = d.userinfoURL
            scopes = d.scopes
            scopeSeparator = d.scopeSeparator
            pkce = d.pkce
            tokenAuthMethod = d.tokenAuthMethod
            accountIdField = d.accountIDField
            accountNameField = d.accountNameField
            authorizeParams = d.authorizeParams
            clientId = v.clientID
            clientSecretSet = v.clientSecretSet
            configured = v.configured
            source = v.source
            updatedAt = Timestamp.date(millis: v.updatedAt)
        }

        enum CodingKeys: String, CodingKey {
            case key, name, authorizeUrl, tokenUrl, revokeUrl, userinfoUrl, scopes, scopeSeparator, pkce, tokenAuthMethod
            case accountIdField, accountNameField, authorizeParams, clientId, clientSecretSet, configured, source, updatedAt
        }

        // Absent values are written as null, so every provider has the same fields.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(key, forKey: .key)
            try c.encode(name, forKey: .name)
            try c.encode(authorizeUrl, forKey: .authorizeUrl)
            try c.encode(tokenUrl, forKey: .tokenUrl)
            try c.encode(revokeUrl, forKey: .revokeUrl)
            try c.encode(userinfoUrl, forKey: .userinfoUrl)
            try c.encode(scopes, forKey: .scopes)
            try c.encode(scopeSeparator, forKey: .scopeSeparator)
            try c.encode(pkce, forKey: .pkce)
            try c.encode(tokenAuthMethod, forKey: .tokenAuthMethod)
            try c.encode(accountIdField, forKey: .accountIdField)
            try c.encode(accountNameField, forKey: .accountNameField)
            try c.encode(authorizeParams, forKey: .authorizeParams)
            try c.encode(clientId, forKey: .clientId)
            try c.encode(clientSecretSet, forKey: .clientSecretSet)
            try c.encode(configured, forKey: .configured)
            try c.encode(source, forKey: .source)
            try c.encode(updatedAt, forKey: .updatedAt)
        }
    }

    struct ConnectionBody: ResponseEncodable {
        let view: ConnectFlow.View

        enum CodingKeys: String, CodingKey {
            case id, installId, provider, status, account, scopes, expiresAt, connectedAt, connectedBy, refreshedAt, lastError
        }

        struct Account: Encodable {
            let id: String?
            let name: String?
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            let r = view.record
            try c.encode(r?.id, forKey: .id)
            try c.encode(view.installID, forKey: .installId)
            try c.encode(view.provider, forKey: .provider)
            try c.encode(view.status, forKey: .status)
            try c.encode(r.map { Account(id: $0.accountId, name: $0.accountName) }, forKey: .account)
            try c.encode(view.scopes, forKey: .scopes)
            try c.encode(r?.expiresAt.map { Timestamp.date(millis: $0) }, forKey: .expiresAt)
            try c.encode(r.map { Timestamp.date(millis: $0.connectedAt) }, forKey: .connectedAt)
            try c.encode(r?.connectedBy, forKey: .connectedBy)
            try c.encode(r?.refreshedAt.map { Timestamp.date(millis: $0) }, forKey: .refreshedAt)
            try c.encode(r?.lastError, forKey: .lastError)
        }
    }

    struct DisconnectedBody: ResponseEncodable {
        let installId: String
        let status: String
        let revokedAtProvider: Bool
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        api.get("providers") { _, context in
            Page(data: try await providers.list(by: try context.requirePrincipal()).map(ProviderBody.init), nextCursor: nil)
        }
        api.put("providers/{key}") { request, context in
            let caller = try context.requirePrincipal()
            let key = try context.parameters.require("key")
            let body = try await request.decodeJSON([String: JSONValue].self, context: context)
            let (view, created) = try await providers.put(key, body: body, by: caller)
            return EditedResponse(status: created ? .created : .ok, response: ProviderBody(view))
        }
        api.get("installs/{id}/oauth/start") { _, context in
            let start = try await flow.start(try context.parameters.require("id"), by: try context.requirePrincipal())
            var headers = HTTPFields()
            headers[.location] = start.location
            headers[.setCookie] = start.setCookie
            headers[.cacheControl] = "no-store"
            return Response(status: .found, headers: headers)
        }
        api.get("installs/{id}/connection") { _, context in
            ConnectionBody(view: try await flow.connection(try context.parameters.require("id"), by: try context.requirePrincipal()))
        }
        api.delete("installs/{id}/connection") { _, context in
            let id = try context.parameters.require("id")
            let revoked = try await flow.disconnect(id, by: InstallService.Actor(try context.requirePrincipal(), requestID: context.requestID))
            return DisconnectedBody(installId: id, status: "not_connected", revokedAtProvider: revoked)
        }
    }

    /// The provider's redirect and the landing page: reached by the admin's browser, without
    /// an API token.
    func registerPublic(on router: Router<AppRequestContext>) {
        router.get("api/v1/oauth/callback") { request, context in
            var query: [String: String] = [:]
            for (name, value) in request.uri.queryParameters where query[String(name)] == nil { query[String(name)] = String(value) }
            let cookies = request.cookies
            let finish = await flow.finish(query: query, cookie: { cookies[$0]?.value }, requestID: context.requestID)
            var headers = HTTPFields()
            headers[.location] = finish.location
            if let clear = finish.clearCookie { headers[.setCookie] = clear }
            headers[.cacheControl] = "no-store"
            headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
            return Response(status: .found, headers: headers)
        }
        router.get("oauth/complete") { [pagesLanding] request, _ in
            let query = request.uri.queryParameters
            if pagesLanding, let next = Self.pagesLocation(installID: query["install_id"].map(String.init), result: query["result"].map(String.init),
                                                           error: query["error"].map(String.init), signedIn: request.cookies["mercato_session"] != nil) {
                var headers = HTTPFields()
                headers[.location] = next
                headers[.cacheControl] = "no-store"
                headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
                return Response(status: .seeOther, headers: headers)
            }
            let page = Self.landingPage(result: query["result"].map(String.init), error: query["error"].map(String.init))
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            headers[.cacheControl] = "no-store"
            headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'none'; style-src 'unsafe-inline'"
            headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
        }
    }

    /// Where a signed-in browser (it holds the pages' session cookie, CONTRACT §8) goes from
    /// the end of a connect flow: the install's page, with the result as a known code only.
    /// `nil` (the plain landing page) for a browser without a session or a malformed install id.
    static func pagesLocation(installID: String?, result: String?, error: String?, signedIn: Bool) -> String? {
        guard signedIn, let installID, RecordID.isValid(installID, prefix: "ins") else { return nil }
        if result == "connected" { return "/installs/\(installID)/connected?result=connected" }
        guard let error else { return nil }
        let code = ConnectFlow.flowErrors[error] == nil ? "server_error" : error
        return "/installs/\(installID)/connected?error=\(code)"
    }

    /// The default end of a connect flow. Only fixed sentences are shown: nothing from the
    /// query reaches the page except by lookup in the table of known codes.
    static func landingPage(result: String?, error: String?) -> String {
        let (title, message): (String, String)
        if result == "connected" {
            (title, message) = ("Account connected", "The account is connected. You can close this window.")
        } else if let error {
            (title, message) = ("Connection failed", ConnectFlow.flowErrors[error] ?? "The connection could not be made. Start it again.")
        } else {
            (title, message) = ("Mercato", "Nothing to show here.")
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(title)</title>
            <style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style></head>
            <body><h1>\(title)</h1><p>\(message)</p><p><a href="/installs">Back to your installs</a></p></body></html>

            """
    }
}
