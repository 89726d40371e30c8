public import MercatoHooks

/// A validated app manifest (CONTRACT §3). Built only by ``ManifestValidator``; stored as JSON
/// and served back in the catalog, so its coding keys are the contract's snake_case names.
public struct AppManifest: Sendable, Equatable, Codable {
    public var key: String
    public var name: String
    public var version: String
    public var description: String
    public var developer: Developer
    public var categories: [String]
    public var iconURL: String?
    public var plan: Plan
    public var scopes: [String]
    public var events: [String]
    public var webhookURL: String?
    public var commandSigning: CommandSigning
    public var oauth: OAuthRequirement?
    public var config: [ConfigField]
    /// The providers that post webhooks to the install (CONTRACT §11); `nil` when none.
    public var inbound: [InboundDeclaration]?

    public struct Developer: Sendable, Equatable, Codable {
        public var name: String
        public var url: String?
        public var email: String?
    }

    public struct CommandSigning: Sendable, Equatable, Codable {
        /// `hmac` or `ed25519`.
        public var type: String
        /// `whpk_` + base64 of the 32-byte Ed25519 public key (ed25519 only).
        public var publicKey: String?

        enum CodingKeys: String, CodingKey {
            case type
            case publicKey = "public_key"
        }
    }

    public struct OAuthRequirement: Sendable, Equatable, Codable {
        public var provider: String
        public var scopes: [String]
    }

    /// One provider whose webhooks the install receives, verified with the secret in `secret_field`.
    public struct InboundDeclaration: Sendable, Equatable, Codable {
        /// A scheme of ``InboundSchemes/known``.
        public var provider: String
        /// The key of a config field of type `secret`.
        public var secretField: String

        public init(provider: String, secretField: String) {
            self.provider = provider
            self.secretField = secretField
        }

        enum CodingKeys: String, CodingKey {
            case provider
            case secretField = "secret_field"
        }
    }

    public struct ConfigField: Sendable, Equatable, Codable {
        public var key: String
        public var label: String
        /// string, text, number, boolean, enum, url or secret.
        public var type: String
        public var required: Bool
        public var `default`: JSONValue?
        public var options: [String]?
        public var pattern: String?
        public var help: String?
        /// Bounds of a number field.
        public var min: Double?
        public var max: Double?

        public var isSecret: Bool { type == "secret" }
    }

    enum CodingKeys: String, CodingKey {
        case key, name, version, description, developer, categories
        case iconURL = "icon_url"
        case plan, scopes, events
        case webhookURL = "webhook_url"
        case commandSigning = "command_signing"
        case oauth, config, inbound
    }

    /// The parsed version.
    public var semver: Semver { Semver(version)! }
}
