/// An event a plugin emits into the outbox with ``PluginAPI/emit(_:for:)``; the host delivers
/// it, signed, to the install's app when it subscribes to the type.
public struct EventDraft: Sendable, Equatable {
    /// The event type, one the manifest lists in ``PluginManifest/emits``.
    public var type: String
    /// The payload's `data` member. No secrets.
    public var data: JSONValue

    /// An event of `type` carrying `data`.
    public init(type: String, data: JSONValue) {
        self.type = type
        self.data = data
    }
}
