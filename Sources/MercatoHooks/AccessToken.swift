public import Foundation

/// An install's access token at its outside provider. Hand it only to the install's own app,
/// in an answer whose ``CommandDefinition/answerHoldsSecrets`` is `true`.
public struct AccessToken: Sendable, Equatable {
    /// The bearer token.
    public var token: String
    /// `nil` when the provider gave the token no lifetime.
    public var expiresAt: Date?
    /// The scopes the provider granted.
    public var scopes: [String]

    /// A token as the host hands it.
    public init(token: String, expiresAt: Date?, scopes: [String]) {
        self.token = token
        self.expiresAt = expiresAt
        self.scopes = scopes
    }
}
