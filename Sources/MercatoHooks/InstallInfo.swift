/// What the host tells a plugin about an install: an app installed in an org.
public struct InstallInfo: Sendable, Equatable {
    /// The install's id (`ins_...`); it names the install's storage namespace.
    public var installID: String
    /// The org the app is installed in (`org_...`).
    public var orgID: String
    /// The org's display name.
    public var orgName: String
    /// The installed app's key in the registry.
    public var appKey: String
    /// The installed version of the app.
    public var appVersion: String
    /// The scopes the org granted the install.
    public var grantedScopes: [String]
    /// The install's status: `active`, `pending_oauth` (its outside account is not connected
    /// yet) or `disabled`; `uninstalled` in hooks about a removed install.
    public var status: String

    /// An install as the host describes it (tests build one with `FakeHost.install`).
    public init(installID: String, orgID: String, orgName: String, appKey: String, appVersion: String, grantedScopes: [String], status: String) {
        self.installID = installID
        self.orgID = orgID
        self.orgName = orgName
        self.appKey = appKey
        self.appVersion = appVersion
        self.grantedScopes = grantedScopes
        self.status = status
    }
}
