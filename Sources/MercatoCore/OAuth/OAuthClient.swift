import AsyncHTTPClient
import Foundation
import MercatoHooks
import NIOCore
import NIOHTTP1

/// A provider with the operator's client credentials, ready for a flow.
public struct ResolvedProvider: Sendable {
    public var definition: ProviderDefinition
    public var clientID: String
    /// `nil` for a public client (`token_auth_method: none`).
    public var clientSecret: String?
}

/// What a token endpoint answered (RFC 6749 §5.1). Never logged, never described.
struct TokenSet: Sendable {
    var accessToken: String
    var refreshToken: String?
    var expiresIn: Int?
    /// Granted scopes when the provider said (it may grant fewer than asked).
    var scopes: [String]?
}

/// Why a call to a provider failed, as a stable code. `invalidGrant` is the one permanent
/// failure of a refresh: the grant is gone and only a new connect flow helps.
enum ProviderFailure: Error, Equatable {
    /// The provider answered an OAuth error (`invalid_grant`, `access_denied`, ...).
    case oauth(code: String, status: Int)
    /// 5xx, 429, a timeout, a refused connection, an answer that is not an OAuth answer.
    case transient(String)

    var isInvalidGrant: Bool {
        if case .oauth("invalid_grant", _) = self { return true }
        return false
    }

    /// A short reason for logs and `last_error`: codes only, never the provider's text.
    var code: String {
        switch self {
        case .oauth(let code, _): code
        case .transient(let why): why
        }
    }
}

/// The calls Mercato makes to a provider: code exchange, refresh (RFC 6749 §4.1.3, §6), token
/// revocation (RFC 7009) and the account lookup. Redirects are never followed; answers are read
/// up to 64 KiB; nothing a provider sends is logged.
struct OAuthClient: Sendable {
    /// One client for every provider call in the process, without redirects. It lives as long as
    /// the process, so it is never shut down.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    var timeout: Duration

    func exchange(code: String, verifier: String?, redirectURI: String, provider: ResolvedProvider) async throws(ProviderFailure) -> TokenSet {
        var form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI)]
        if let verifier { form.append(("code_verifier", verifier)) }
        return try await tokenRequest(form, provider: provider)
    }

    func refresh(_ refreshToken: String, provider: ResolvedProvider) async throws(ProviderFailure) -> TokenSet {
        try await tokenRequest([("grant_type", "refresh_token"), ("refresh_token", refreshToken)], provider: provider)
    }

    /// RFC 7009: `true` when the provider answered 200 (it also does for unknown tokens).
    func revoke(_ token: String, hint: String, provider: ResolvedProvider) async -> Bool {
        guard let url = provider.definition.revokeURL else { return false }
        do {
            let (status, _) = try await post(url, form: [("token", token), ("token_type_hint", hint)], provider: provider)
            return status == 200
        } catch {
            return false
        }
    }

    /// The connected account's id and display name from the userinfo URL.
    func account(accessToken: String, provider: ResolvedProvider) async throws(ProviderFailure) -> (id: String?, name: String?) {
        guard let url = provider.definition.userinfoURL else { return (nil, nil) }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(accessToken)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Mercato-OAuth/1")
        let (status, body) = try await send(request)
        guard status == 200, let document = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            throw .transient(status == 200 ? "userinfo_not_json" : "userinfo_http_\(status)")
        }
        let id = provider.definition.accountIDField.flatMap { Self.text(at: $0, in: document) }
        let name = provider.definition.accountNameField.flatMap { Self.text(at: $0, in: document) }
        if provider.definition.accountIDField != nil && id == nil { throw .transient("userinfo_without_account_id") }
        return (id, name)
    }

    // MARK: Internals

    private func tokenRequest(_ form: [(String, String)], provider: ResolvedProvider) async throws(ProviderFailure) -> TokenSet {
        let (status, body) = try await post(provider.definition.tokenURL, form: form, provider: provider)
        let document = try? JSONDecoder().decode(JSONValue.self, from: body)
        // Some providers answer errors with 200, so the `error` member decides first.
        if let error = document?["error"]?.stringValue {
            let code = Self.safeCode(error)
            if status >= 500 || status == 429 { throw .transient("provider_http_\(status)") }
            throw .oauth(code: code, status: status)
        }
        guard status == 200 else {
            throw status >= 500 || status == 429 ? .transient("provider_http_\(status)") : .oauth(code: "http_\(status)", status: status)
        }
        guard let document, let access = document["access_token"]?.stringValue, !access.isEmpty else {
            throw .transient("token_answer_without_access_token")
        }
        if let type = document["token_type"]?.stringValue, type.lowercased() != "bearer" { throw .oauth(code: "unsupported_token_type", status: status) }
        let expiresIn: Int? = switch document["expires_in"] {
        case .number(let n)? where n > 0: Int(n)
        case .string(let s)? : Int(s).flatMap { $0 > 0 ? $0 : nil }
        default: nil
        }
        let scopes = document["scope"]?.stringValue.map { text in
            text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        }
        let refresh = document["refresh_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        return TokenSet(accessToken: access, refreshToken: refresh, expiresIn: expiresIn, scopes: scopes)
    }

    /// POSTs a form with the provider's client authentication (RFC 6749 §2.3.1).
    private func post(_ url: String, form: [(String, String)], provider: ResolvedProvider) async throws(ProviderFailure) -> (Int, Data) {
        var fields = form
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        switch provider.definition.tokenAuthMethod {
        case "client_secret_post":
            fields += [("client_id", provider.clientID), ("client_secret", provider.clientSecret ?? "")]
        case "none":
            fields.append(("client_id", provider.clientID))
        default:
            let pair = Self.formEncode(provider.clientID) + ":" + Self.formEncode(provider.clientSecret ?? "")
            request.headers.add(name: "Authorization", value: "Basic " + Data(pair.utf8).base64EncodedString())
        }
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Mercato-OAuth/1")
        request.body = .bytes(ByteBuffer(string: fields.map { Self.formEncode($0.0) + "=" + Self.formEncode($0.1) }.joined(separator: "&")))
        return try await send(request)
    }

    private func send(_ request: HTTPClientRequest) async throws(ProviderFailure) -> (Int, Data) {
        do {
            let response = try await Self.http.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            var body = ByteBuffer()
            for try await chunk in response.body {
                var chunk = chunk
                guard body.readableBytes + chunk.readableBytes <= 64 * 1024 else { throw ProviderFailure.transient("answer_too_large") }
                body.writeBuffer(&chunk)
            }
            return (Int(response.status.code), Data(body.readableBytesView))
        } catch let failure as ProviderFailure {
            throw failure
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw .transient("provider_timeout")
        } catch {
            throw .transient("provider_unreachable")
        }
    }

    /// `application/x-www-form-urlencoded` of one name or value (a space is `+`).
    static func formEncode(_ text: String) -> String {
        queryEncode(text).replacingOccurrences(of: "%20", with: "+")
    }

    /// Percent-encoding of one query name or value: only unreserved characters stay (a space is
    /// `%20`, which every provider reads the same way).
    static func queryEncode(_ text: String) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// A provider's error code kept only when it looks like one (`[a-z0-9_.-]`, 64 at most),
    /// so nothing else a provider sends can reach a log or the UI.
    static func safeCode(_ text: String) -> String {
        let ok = !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 46 || $0 == 45 }
        return ok ? text : "unrecognised_error"
    }

    /// The value at a dotted path (`data.gid`) as text: strings as they are, numbers without a
    /// fraction as integers.
    static func text(at path: String, in document: JSONValue) -> String? {
        var node: JSONValue? = document
        for part in path.split(separator: ".") { node = node?[String(part)] }
        switch node {
        case .string(let s)?: return s.isEmpty ? nil : String(s.prefix(256))
        case .number(let n)?: return n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        default: return nil
        }
    }
}
