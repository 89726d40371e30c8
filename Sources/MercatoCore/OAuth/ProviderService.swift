import Foundation
public import MercatoHooks
import MercatoCrypto
public import MercatoStorage
import SQLKit

/// OAuth providers: definitions from the catalog or the operator, and the operator's client
/// credentials. The client secret is sealed in the vault (platform org, owner `provider:<key>`)
/// and never leaves the server except in calls to the provider itself.
public struct ProviderService: Sendable {
    let database: Database
    let secrets: SecretStore
    let clock: WallClock

    public init(database: Database, secrets: SecretStore, clock: WallClock) {
        self.database = database
        self.secrets = secrets
        self.clock = clock
    }

    /// A provider as the API shows it: never the secret, only whether one is set.
    public struct View: Sendable {
        public var definition: ProviderDefinition
        public var clientID: String?
        public var clientSecretSet: Bool
        public var source: String
        public var updatedAt: Int64
        /// Client id set, and a secret too unless the client is public.
        public var configured: Bool { clientID != nil && (clientSecretSet || definition.tokenAuthMethod == "none") }
    }

    static func secretContext(_ key: String) -> SealContext {
        SealContext(org: SealContext.platformOrg, owner: "provider:\(key)", purpose: "oauth.client_secret")
    }

    public func list(by caller: Principal) async throws -> [View] {
        if !caller.isOperator { _ = try caller.org(atLeast: .member, to: "Listing OAuth providers") }
        return try await database.read { db in
            var views: [View] = []
            for row in try await ProviderStore.all(on: db) { views.append(try await view(row, on: db)) }
            return views
        }
    }

    /// Creates or updates `key`. Fields the body leaves out keep their stored value (so the
    /// operator can set only the credentials of a catalog provider); `client_secret` is
    /// write-only. Answers the view and whether the provider is new.
    public func put(_ key: String, body: [String: JSONValue], by caller: Principal) async throws -> (view: View, created: Bool) {
        guard caller.isOperator else { throw APIError.forbidden("Only the operator sets OAuth providers.") }
        var fields = body
        let clientID = fields.removeValue(forKey: "client_id")
        let clientSecret = fields.removeValue(forKey: "client_secret")
        var problems: [APIError.FieldProblem] = []
        if let k = fields["key"], k != .string(key) { problems.append(.init(field: "key", message: "must equal the key in the path (\(key))")) }
        func credential(_ value: JSONValue?, _ field: String, max: Int) -> String?? {
            guard let value else { return .none }
            if value == .null { return .some(nil) }
            guard let s = value.stringValue, !s.isEmpty, s.utf8.count <= max, s.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                problems.append(.init(field: field, message: "must be 1-\(max) printable characters without spaces"))
                return .none
            }
            return .some(s)
        }
        let newID = credential(clientID, "client_id", max: 512)
        let newSecret = credential(clientSecret, "client_secret", max: 2048)
        let now = clock.millis
        let bodyFields = fields
        let earlier = problems
        return try await database.transaction { db in
            var problems = earlier
            let existing = try await ProviderStore.find(key: key, on: db)
            var document: [String: JSONValue] = [:]
            if let existing, let stored = try? JSONDecoder().decode(JSONValue.self, from: Data(existing.definition.utf8)).objectValue {
                document = stored
            }
            document.merge(bodyFields) { _, new in new }
            document["key"] = .string(key)
            let definition: ProviderDefinition
            switch ProviderDefinition.validate(.object(document)) {
            case .success(let d): definition = d
            case .failure(let p): problems += p.errors.map { .init(field: $0.field, message: $0.message) }; definition = ProviderDefinition.placeholder
            }
            let storedID: String? = switch newID { case .some(let v): v; case .none: existing?.clientId }
            let storedSecretSet = try await SealedValueStore.find(owner: Self.secretContext(key).owner, purpose: Self.secretContext(key).purpose, on: db) != nil
            let secretSet: Bool = switch newSecret { case .some(let v): v != nil; case .none: storedSecretSet }
            if definition.tokenAuthMethod != "none" && storedID != nil && !secretSet {
                problems.append(.init(field: "client_secret", message: "is required with token_auth_method \(definition.tokenAuthMethod)"))
            }
            guard problems.isEmpty else { throw APIError.fieldProblems(problems, lead: "The provider cannot be saved: ") }
            try await ProviderStore.put(key: key, definitionJSON: try JSONCoding.text(definition), clientID: storedID,
                                        at: now, on: db)
            switch newSecret {
            case .some(let secret?): try await secrets.put(secret, for: Self.secretContext(key), on: db)
            case .some(nil): try await SealedValueStore.delete(owner: Self.secretContext(key).owner, purpose: Self.secretContext(key).purpose, on: db)
            case .none: break
            }
            guard let row = try await ProviderStore.find(key: key, on: db) else { throw APIError.notFound("Provider \(key)") }
            return (try await view(row, on: db), existing == nil)
        }
    }

    /// The provider with its credentials, or 409 `provider_not_configured`.
    public func resolve(_ key: String) async throws -> ResolvedProvider {
        try await database.read { db in
            guard let row = try await ProviderStore.find(key: key, on: db) else { throw Self.notConfigured(key, "is not defined on this server") }
            let definition = try JSONDecoder().decode(ProviderDefinition.self, from: Data(row.definition.utf8))
            guard let clientID = row.clientId else { throw Self.notConfigured(key, "has no client id yet") }
            let secret = try await secrets.get(Self.secretContext(key), on: db)
            if definition.tokenAuthMethod != "none" && secret == nil { throw Self.notConfigured(key, "has no client secret yet") }
            return ResolvedProvider(definition: definition, clientID: clientID, clientSecret: secret)
        }
    }

    static func notConfigured(_ key: String, _ why: String) -> APIError {
        APIError(status: 409, code: "provider_not_configured", title: "Provider not configured",
                 detail: "The OAuth provider `\(key)` \(why); the operator sets it with PUT /api/v1/providers/\(key).")
    }

    private func view(_ row: ProviderStore.Row, on db: any SQLDatabase) async throws -> View {
        let definition = try JSONDecoder().decode(ProviderDefinition.self, from: Data(row.definition.utf8))
        let secretSet = try await SealedValueStore.find(owner: Self.secretContext(row.key).owner, purpose: Self.secretContext(row.key).purpose, on: db) != nil
        return View(definition: definition, clientID: row.clientId, clientSecretSet: secretSet, source: row.source, updatedAt: row.updatedAt)
    }
}

extension ProviderDefinition {
    /// Stands in while problems are collected; never stored.
    static let placeholder = ProviderDefinition(
        key: "", name: "", authorizeURL: "", tokenURL: "", revokeURL: nil, userinfoURL: nil, scopes: [], scopeSeparator: " ", pkce: true,
        tokenAuthMethod: "client_secret_basic", accountIDField: nil, accountNameField: nil, authorizeParams: [:]
    )
}
