import Foundation
public import MercatoHooks

/// An OAuth 2 provider as `catalog/providers/*.yaml` and `PUT /api/v1/providers/{key}` define it.
/// Client credentials are not part of it; the operator sets them separately.
public struct ProviderDefinition: Sendable, Equatable, Codable {
    public var key: String
    public var name: String
    public var authorizeURL: String
    public var tokenURL: String
    public var revokeURL: String?
    public var userinfoURL: String?
    public var scopes: [String]
    public var scopeSeparator: String
    public var pkce: Bool
    /// `client_secret_basic`, `client_secret_post` or `none`.
    public var tokenAuthMethod: String
    public var accountIDField: String?
    public var accountNameField: String?
    public var authorizeParams: [String: String]

    enum CodingKeys: String, CodingKey {
        case key, name, scopes, pkce
        case authorizeURL = "authorize_url"
        case tokenURL = "token_url"
        case revokeURL = "revoke_url"
        case userinfoURL = "userinfo_url"
        case scopeSeparator = "scope_separator"
        case tokenAuthMethod = "token_auth_method"
        case accountIDField = "account_id_field"
        case accountNameField = "account_name_field"
        case authorizeParams = "authorize_params"
    }

    static let fields: Set<String> = [
        "key", "name", "authorize_url", "token_url", "revoke_url", "userinfo_url", "scopes", "scope_separator",
        "pkce", "token_auth_method", "account_id_field", "account_name_field", "authorize_params",
    ]

    /// Validates a definition document, reporting every problem.
    public static func validate(_ document: JSONValue) -> Result<ProviderDefinition, ManifestProblems> {
        var p = Problems()
        guard let o = document.objectValue else {
            return .failure(ManifestProblems(errors: [.init(field: "", message: "a provider definition must be an object")]))
        }
        for field in o.keys.sorted() where !fields.contains(field) { p.add(field, "is not a provider field") }
        let key = p.string(o, "key", required: true, max: 64)
        if let key, !ManifestValidator.matches(ManifestValidator.keyPattern, key) { p.add("key", "must match ^[a-z][a-z0-9-]{2,39}$") }
        let name = p.string(o, "name", required: true, max: 100)
        func url(_ field: String, required: Bool) -> String? {
            let value = p.string(o, field, required: required, max: 2048)
            // http only on loopback, as for webhook URLs: a provider running beside a development server.
            if let value, !ManifestValidator.isAcceptableWebhookURL(value) {
                p.add(field, "must be an https URL (http is accepted only for localhost, 127.0.0.1 or [::1])")
            }
            return value
        }
        let authorize = url("authorize_url", required: true)
        let token = url("token_url", required: true)
        let revoke = url("revoke_url", required: false)
        let userinfo = url("userinfo_url", required: false)
        let scopes = p.strings(o, "scopes", max: 100) ?? []
        let separator = p.string(o, "scope_separator", required: false, max: 1) ?? " "
        if ![" ", ","].contains(separator) { p.add("scope_separator", "must be a space or a comma") }
        var pkce = true
        if let v = o["pkce"] { if let b = v.boolValue { pkce = b } else { p.add("pkce", "must be true or false") } }
        let method = p.string(o, "token_auth_method", required: false, max: 40) ?? "client_secret_basic"
        if !["client_secret_basic", "client_secret_post", "none"].contains(method) {
            p.add("token_auth_method", "must be client_secret_basic, client_secret_post or none")
        }
        if method == "none" && !pkce { p.add("pkce", "must be true when token_auth_method is none (a public client)") }
        var params: [String: String] = [:]
        if let v = o["authorize_params"], v != .null {
            if let object = v.objectValue {
                for (k, value) in object {
                    guard let s = value.stringValue else { p.add("authorize_params.\(k)", "must be a string"); continue }
                    if ["client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "response_type", "scope"].contains(k) {
                        p.add("authorize_params.\(k)", "is set by Mercato and cannot be overridden")
                    }
                    params[k] = s
                }
            } else {
                p.add("authorize_params", "must be a map of strings")
            }
        }
        let idField = p.string(o, "account_id_field", required: false, max: 200)
        let nameField = p.string(o, "account_name_field", required: false, max: 200)
        guard p.errors.isEmpty, let key, let name, let authorize, let token else { return .failure(ManifestProblems(errors: p.errors)) }
        return .success(ProviderDefinition(
            key: key, name: name, authorizeURL: authorize, tokenURL: token, revokeURL: revoke, userinfoURL: userinfo,
            scopes: scopes, scopeSeparator: separator, pkce: pkce, tokenAuthMethod: method,
            accountIDField: idField, accountNameField: nameField, authorizeParams: params
        ))
    }
}
