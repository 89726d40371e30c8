public import Logging

/// Per-call context of an org-level call (a route, an activity): the org's storage of this
/// plugin across its installs, plus the org's own namespace.
public struct OrgContext: Sendable {
    /// The id of the request that caused the call, when there is one.
    public var requestID: String?
    /// A logger carrying the request id. Never log config values, tokens or secrets.
    public var logger: Logger
    /// The host's services for this call (outbox, config, access tokens).
    public var api: any PluginAPI
    /// The org the call is about.
    public var org: OrgInfo
    /// This plugin's data in ``org``: every install's namespace, and the org's own.
    public var storage: any OrgStorage

    /// A context as the host builds it (tests get one from `FakeHost.orgContext`).
    public init(requestID: String?, logger: Logger, api: any PluginAPI, org: OrgInfo, storage: any OrgStorage) {
        self.requestID = requestID
        self.logger = logger
        self.api = api
        self.org = org
        self.storage = storage
    }
}
