/// The org a route or an activity is about.
public struct OrgInfo: Sendable, Equatable {
    /// The org's id (`org_...`).
    public var id: String
    /// The org's display name.
    public var name: String
    /// `free`, `pro` or `enterprise`.
    public var plan: String

    /// An org as the host describes it.
    public init(id: String, name: String, plan: String) {
        self.id = id
        self.name = name
        self.plan = plan
    }
}
