public import Foundation

/// An admin or lifecycle action the host recorded in the change's transaction; plugins see it
/// once it committed (at least once, so key what you keep by ``id``).
public struct Activity: Sendable, Equatable {
    /// Stable across redeliveries (`aud_...`).
    public var id: String
    /// `app.installed`, `install.config_updated`, `token.created`, ...
    public var action: String
    /// The principal or token that acted (`usr_...`, `tok_...`, `operator`).
    public var actor: String
    /// What it acted on (`ins_...`, `tok_...`, an app key).
    public var target: String
    /// The id of the request that made the change, when there was one.
    public var requestID: String?
    /// Non-secret facts: field names, versions, statuses. Never values of secret fields.
    public var details: JSONValue
    /// When the change committed.
    public var occurredAt: Date

    /// An activity as the host records it.
    public init(id: String, action: String, actor: String, target: String, requestID: String?, details: JSONValue, occurredAt: Date) {
        self.id = id
        self.action = action
        self.actor = actor
        self.target = target
        self.requestID = requestID
        self.details = details
        self.occurredAt = occurredAt
    }
}
