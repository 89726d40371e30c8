import Foundation
public import MercatoHooks

/// Checks a manifest document against CONTRACT §3 and the running plugins' capabilities,
/// collecting every problem (with the field it is about) instead of stopping at the first.
public struct ManifestValidator: Sendable {
    public let capabilities: Capabilities
    /// OAuth providers known to this server.
    public let providers: Set<String>

    public init(capabilities: Capabilities, providers: Set<String>) {
        self.capabilities = capabilities
        self.providers = providers
    }

    static let topLevelFields: Set<String> = [
        "key", "name", "version", "description", "developer", "categories", "icon_url", "plan",
        "scopes", "events", "webhook_url", "command_signing", "oauth", "config",
        "inbound",
    ]
    static let fieldTypes: Set<String> = ["string", "text", "number", "boolean", "enum", "url", "secret"]
    static let keyPattern = try! NSRegularExpression(pattern: "^[a-z][a-z0-9-]{2,39}$")
    static let configKeyPattern = try! NSRegularExpression(pattern: "^[a-z][a-z0-9_]{0,63}$")
    static let slugPattern = try! NSRegularExpression(pattern: "^[a-z][a-z0-9-]{1,39}$")

    /// The typed manifest, or every problem found.
    public func validate(_ document: JSONValue) -> Result<AppManifest, ManifestProblems> {
        var p = Problems()
        guard let top = document.objectValue else {
            return .failure(ManifestProblems(errors: [.init(field: "", message: "the manifest must be an object")]))
        }
        for field in top.keys.sorted() where !Self.topLevelFields.contains(field) {
            p.add(field, "is not a manifest field")
        }
        let key = p.string(top, "key", required: true, max: 40)
        if let key, !Self.matches(Self.keyPattern, key) {
            p.add("key", "must match ^[a-z][a-z0-9-]{2,39}$ (lower-case letters, digits and dashes, 3 to 40 long, starting with a letter)")
        }
        let name = p.string(top, "name", required: true, max: 100)
        let version = p.string(top, "version", required: true, max: 128)
        if let version, Semver(version) == nil { p.add("version", "must be a semantic version such as 1.2.0") }
        let description = p.string(top, "description", required: true, max: 4000)
        let developer = validateDeveloper(top["developer"], &p)
        let categories = p.strings(top, "categories", max: 10) ?? []
        for (i, c) in categories.enumerated() where !Self.matches(Self.slugPattern, c) {
            p.add("categories[\(i)]", "must be a lower-case slug such as `communication`")
        }
        let iconURL = p.string(top, "icon_url", required: false, max: 2048)
        if let iconURL, !Self.isHTTPS(iconURL) { p.add("icon_url", "must be an https URL") }
        var plan = Plan.free
        if let raw = p.string(top, "plan", required: false, max: 20) {
            if let parsed = Plan(rawValue: raw) { plan = parsed } else { p.add("plan", "must be one of free, pro, enterprise") }
        }
        let scopes = p.strings(top, "scopes", max: 64) ?? []
        for (i, s) in scopes.enumerated() where capabilities.scopes[s] == nil {
            p.add("scopes[\(i)]", "`\(s)` is not a scope of this server (known: \(capabilities.scopes.keys.sorted().joined(separator: ", ")))")
        }
        let events = p.strings(top, "events", max: 64) ?? []
        for (i, e) in events.enumerated() where !capabilities.eventTypes.contains(e) {
            p.add("events[\(i)]", "`\(e)` is not an event type of this server")
        }
        let webhookURL = p.string(top, "webhook_url", required: false, max: 2048)
        if let webhookURL, !Self.isAcceptableWebhookURL(webhookURL) {
            p.add("webhook_url", "must be an https URL (http is accepted only for localhost, 127.0.0.1 or [::1])")
        }
        if webhookURL == nil && !events.isEmpty { p.add("webhook_url", "is required when the app subscribes to events") }
        let signing = validateSigning(top["command_signing"], &p)
        let oauth = validateOAuth(top["oauth"], &p)
        let config = validateConfig(top["config"], &p)
        let inbound = validateInbound(top["inbound"], config: config, &p)

        guard p.errors.isEmpty, let key, let name, let version, let description, let developer, let signing else {
            return .failure(ManifestProblems(errors: p.errors))
        }
        return .success(AppManifest(
            key: key, name: name, version: version, description: description, developer: developer,
            categories: categories, iconURL: iconURL, plan: plan, scopes: scopes, events: events,
            webhookURL: webhookURL, commandSigning: signing, oauth: oauth, config: config, inbound: inbound
        ))
    }

    private func validateDeveloper(_ value: JSONValue?, _ p: inout Problems) -> AppManifest.Developer? {
        guard let value else { p.add("developer", "is required"); return nil }
        guard let object = value.objectValue else { p.add("developer", "must be an object with name, url and email"); return nil }
        p.rejectUnknown(object, allowed: ["name", "url", "email"], at: "developer")
        let name = p.string(object, "name", required: true, max: 100, at: "developer")
        let url = p.string(object, "url", required: false, max: 2048, at: "developer")
        if let url, !Self.isHTTPS(url) { p.add("developer.url", "must be an https URL") }
        let email = p.string(object, "email", required: false, max: 254, at: "developer")
        if let email, !Self.looksLikeEmail(email) { p.add("developer.email", "must be an email address") }
        return name.map { AppManifest.Developer(name: $0, url: url, email: email) }
    }

    private func validateSigning(_ value: JSONValue?, _ p: inout Problems) -> AppManifest.CommandSigning? {
        guard let value else { return AppManifest.CommandSigning(type: "hmac", publicKey: nil) }
        guard let object = value.objectValue else { p.add("command_signing", "must be {\"type\": \"hmac\"} or {\"type\": \"ed25519\", \"public_key\": \"whpk_...\"}"); return nil }
        p.rejectUnknown(object, allowed: ["type", "public_key"], at: "command_signing")
        guard let type = p.string(object, "type", required: true, max: 20, at: "command_signing") else { return nil }
        switch type {
        case "hmac":
            if object["public_key"] != nil { p.add("command_signing.public_key", "is only for ed25519 signing") }
            return AppManifest.CommandSigning(type: "hmac", publicKey: nil)
        case "ed25519":
            guard let key = p.string(object, "public_key", required: true, max: 100, at: "command_signing") else { return nil }
            guard Self.ed25519PublicKey(key) != nil else {
                p.add("command_signing.public_key", "must be `whpk_` followed by the base64 of a 32-byte Ed25519 public key")
                return nil
            }
            return AppManifest.CommandSigning(type: "ed25519", publicKey: key)
        default:
            p.add("command_signing.type", "must be hmac or ed25519")
            return nil
        }
    }

    private func validateOAuth(_ value: JSONValue?, _ p: inout Problems) -> AppManifest.OAuthRequirement? {
        guard let value, value != .null else { return nil }
        guard let object = value.objectValue else { p.add("oauth", "must be an object with provider and scopes"); return nil }
        p.rejectUnknown(object, allowed: ["provider", "scopes"], at: "oauth")
        let provider = p.string(object, "provider", required: true, max: 64, at: "oauth")
        if let provider, !providers.contains(provider) {
            p.add("oauth.provider", "`\(provider)` is not an OAuth provider of this server (known: \(providers.sorted().joined(separator: ", ")))")
        }
        let scopes = p.strings(object, "scopes", max: 100, at: "oauth") ?? []
        return provider.map { AppManifest.OAuthRequirement(provider: $0, scopes: scopes) }
    }

    private func validateConfig(_ value: JSONValue?, _ p: inout Problems) -> [AppManifest.ConfigField] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else { p.add("config", "must be a list of fields"); return [] }
        if items.count > 100 { p.add("config", "may have at most 100 fields") }
        var fields: [AppManifest.ConfigField] = []
        var seen = Set<String>()
        for (i, item) in items.enumerated() {
            let at = "config[\(i)]"
            guard let object = item.objectValue else { p.add(at, "must be an object"); continue }
            p.rejectUnknown(object, allowed: ["key", "label", "type", "required", "default", "options", "pattern", "help", "min", "max"], at: at)
            let key = p.string(object, "key", required: true, max: 64, at: at)
            if let key {
                if !Self.matches(Self.configKeyPattern, key) { p.add("\(at).key", "must match ^[a-z][a-z0-9_]{0,63}$") }
                if !seen.insert(key).inserted { p.add("\(at).key", "`\(key)` is used by another field") }
            }
            let label = p.string(object, "label", required: true, max: 200, at: at)
            let type = p.string(object, "type", required: true, max: 20, at: at)
            if let type, !Self.fieldTypes.contains(type) {
                p.add("\(at).type", "must be one of \(Self.fieldTypes.sorted().joined(separator: ", "))")
            }
            var required = false
            if let r = object["required"] {
                if let b = r.boolValue { required = b } else { p.add("\(at).required", "must be true or false") }
            }
            let options = p.strings(object, "options", max: 200, at: at)
            if type == "enum" {
                if (options ?? []).isEmpty { p.add("\(at).options", "an enum field needs a non-empty list of options") }
                else if Set(options!).count != options!.count { p.add("\(at).options", "must not repeat an option") }
            } else if options != nil {
                p.add("\(at).options", "is only for enum fields")
            }
            let pattern = p.string(object, "pattern", required: false, max: 500, at: at)
            var compiled: NSRegularExpression?
            if let pattern {
                if let type, !["string", "text", "url", "secret"].contains(type) {
                    p.add("\(at).pattern", "is only for string, text, url and secret fields")
                }
                do { compiled = try NSRegularExpression(pattern: pattern) } catch {
                    p.add("\(at).pattern", "is not a valid regular expression")
                }
            }
            let help = p.string(object, "help", required: false, max: 1000, at: at)
            var bounds: [String: Double] = [:]
            for bound in ["min", "max"] {
                guard let v = object[bound], v != .null else { continue }
                if type != "number" { p.add("\(at).\(bound)", "is only for number fields") }
                if let n = v.numberValue { bounds[bound] = n } else { p.add("\(at).\(bound)", "must be a number") }
            }
            if let lo = bounds["min"], let hi = bounds["max"], lo > hi { p.add("\(at).max", "must not be below min") }
            let defaultValue = object["default"].flatMap { $0 == .null ? nil : $0 }
            if let defaultValue, let type, Self.fieldTypes.contains(type) {
                if type == "secret" {
                    p.add("\(at).default", "a secret field cannot have a default")
                } else if let problem = ConfigValueCheck.problem(with: defaultValue, type: type, options: options, pattern: compiled,
                                                                 min: bounds["min"], max: bounds["max"]) {
                    p.add("\(at).default", problem)
                }
            }
            if let key, let label, let type {
                fields.append(AppManifest.ConfigField(key: key, label: label, type: type, required: required, default: defaultValue,
                                                      options: options, pattern: pattern, help: help, min: bounds["min"], max: bounds["max"]))
            }
        }
        return fields
    }

    /// `inbound`: a list of `{provider, secret_field}`, each provider a known scheme declared
    /// once, each `secret_field` the key of a config field of type `secret`.
    private func validateInbound(_ value: JSONValue?, config: [AppManifest.ConfigField], _ p: inout Problems) -> [AppManifest.InboundDeclaration]? {
        guard let value, value != .null else { return nil }
        guard case .array(let items) = value else { p.add("inbound", "must be a list of {provider, secret_field}"); return nil }
        if items.count > InboundSchemes.known.count { p.add("inbound", "may declare each provider once") }
        var declarations: [AppManifest.InboundDeclaration] = []
        var seen = Set<String>()
        for (i, item) in items.enumerated() {
            let at = "inbound[\(i)]"
            guard let object = item.objectValue else { p.add(at, "must be an object with provider and secret_field"); continue }
            p.rejectUnknown(object, allowed: ["provider", "secret_field"], at: at)
            let provider = p.string(object, "provider", required: true, max: 64, at: at)
            if let provider {
                if !InboundSchemes.known.contains(provider) {
                    p.add("\(at).provider", "`\(provider)` is not an inbound scheme of this server (known: \(InboundSchemes.known.joined(separator: ", ")))")
                } else if !seen.insert(provider).inserted {
                    p.add("\(at).provider", "`\(provider)` is declared twice")
                }
            }
            let secretField = p.string(object, "secret_field", required: true, max: 64, at: at)
            if let secretField {
                switch config.first(where: { $0.key == secretField }) {
                case nil: p.add("\(at).secret_field", "`\(secretField)` is not a config field of this manifest")
                case let field? where !field.isSecret: p.add("\(at).secret_field", "`\(secretField)` must be a config field of type secret")
                default: break
                }
            }
            if let provider, let secretField { declarations.append(.init(provider: provider, secretField: secretField)) }
        }
        return declarations
    }

    // MARK: Small checks

    static func matches(_ regex: NSRegularExpression, _ s: String) -> Bool {
        regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    static func isHTTPS(_ s: String) -> Bool {
        guard let url = URL(string: s), url.scheme == "https", let host = url.host, !host.isEmpty else { return false }
        return true
    }

    static func isAcceptableWebhookURL(_ s: String) -> Bool {
        guard let url = URL(string: s), let host = url.host, !host.isEmpty else { return false }
        if url.scheme == "https" { return true }
        return url.scheme == "http" && ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host.lowercased())
    }

    static func looksLikeEmail(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !s.contains(" ")
    }

    /// The 32 key bytes of a `whpk_...` public key.
    public static func ed25519PublicKey(_ s: String) -> [UInt8]? {
        guard s.hasPrefix("whpk_"), let data = Data(base64Encoded: String(s.dropFirst(5))), data.count == 32 else { return nil }
        return Array(data)
    }
}

/// Every problem with a manifest; rendered as 422 `invalid_manifest`.
public struct ManifestProblems: Error, Sendable, Equatable {
    public let errors: [APIError.FieldProblem]

    public var apiError: APIError {
        let n = errors.count
        return .fieldProblems(errors, code: "invalid_manifest", title: "Invalid manifest", lead: "The manifest has \(n) problem\(n == 1 ? "" : "s"): ")
    }
}

/// Collects field problems while reading a JSON object.
struct Problems {
    var errors: [APIError.FieldProblem] = []

    mutating func add(_ field: String, _ message: String) {
        errors.append(.init(field: field, message: message))
    }

    private static func path(_ at: String?, _ key: String) -> String { at.map { "\($0).\(key)" } ?? key }

    mutating func rejectUnknown(_ object: [String: JSONValue], allowed: Set<String>, at: String) {
        for key in object.keys.sorted() where !allowed.contains(key) { add("\(at).\(key)", "is not a known field") }
    }

    mutating func string(_ object: [String: JSONValue], _ key: String, required: Bool, max: Int, at: String? = nil) -> String? {
        let field = Self.path(at, key)
        guard let value = object[key], value != .null else {
            if required { add(field, "is required") }
            return nil
        }
        guard let s = value.stringValue else { add(field, "must be a string"); return nil }
        let trimmed = s.trimmingCharacters(in: .whitespacesAndNewlines)
        if required && trimmed.isEmpty { add(field, "must not be empty"); return nil }
        if s.count > max { add(field, "must be at most \(max) characters"); return nil }
        return s
    }

    mutating func strings(_ object: [String: JSONValue], _ key: String, max: Int, at: String? = nil) -> [String]? {
        let field = Self.path(at, key)
        guard let value = object[key], value != .null else { return nil }
        guard case .array(let items) = value else { add(field, "must be a list of strings"); return nil }
        if items.count > max { add(field, "may have at most \(max) entries") }
        var out: [String] = []
        var seen = Set<String>()
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue, !s.isEmpty else { add("\(field)[\(i)]", "must be a non-empty string"); continue }
            if !seen.insert(s).inserted { add("\(field)[\(i)]", "`\(s)` is listed twice") }
            out.append(s)
        }
        return out
    }
}
