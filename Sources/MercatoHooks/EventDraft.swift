/// An event a plugin emits into the outbox with ``PluginAPI/emit(_:for:)``; the host delivers
/// it, signed, to the install's app when it subscribes to the type.
public struct EventDraft: Sendable, Equatable {
    /// The event type, one the manifest lists in ``PluginManifest/emits``.
    public var type: String
    /// The payload's `data` member. No secrets.
    public var data: JSONValue
    /// Members of `data` (an object) delivered as this text rather than written from their
    /// value (which is the text's ``JSONText/value``): e.g. a provider's body as it was sent.
    public var verbatim: [String: JSONText]

    /// An event of `type` carrying `data`.
    public init(type: String, data: JSONValue) {
        self.type = type
        self.data = data
        self.verbatim = [:]
    }

    /// An event of `type` whose `data` holds `members` and the `verbatim` members as their text.
    public init(type: String, data members: [String: JSONValue], verbatim: [String: JSONText]) {
        var members = members
        for (key, text) in verbatim { members[key] = text.value }
        self.type = type
        self.data = .object(members)
        self.verbatim = verbatim
    }
}
