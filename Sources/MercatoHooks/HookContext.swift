public import Logging

/// Per-call context of a command or an install hook: who asked, a logger, what the host
/// offers, and the install's storage.
public struct HookContext: Sendable {
    /// The id of the request that caused the call, when there is one.
    public var requestID: String?
    /// A logger carrying the request id. Never log config values, tokens or secrets.
    public var logger: Logger {
        // The request id is added when a plugin asks for the logger, not for every call: a
        // logger's metadata set is a copy of its handler and a dictionary.
        get {
            guard let requestID, baseLogger[metadataKey: "request_id"] == nil else { return baseLogger }
            var logger = baseLogger
            logger[metadataKey: "request_id"] = .string(requestID)
            return logger
        }
        set { baseLogger = newValue }
    }
    private var baseLogger: Logger
    /// The host's services for this call (outbox, config, access tokens).
    public var api: any PluginAPI
    /// This plugin's storage for the install the call is about: namespaced by the host, so a
    /// plugin never sees another plugin's or another install's data.
    public var storage: any PluginStorage

    /// A context as the host builds it (tests get one from `FakeHost.context`).
    public init(requestID: String?, logger: Logger, api: any PluginAPI, storage: any PluginStorage) {
        self.requestID = requestID
        self.baseLogger = logger
        self.api = api
        self.storage = storage
    }
}
