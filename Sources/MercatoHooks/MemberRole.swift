/// A role in an org, from least to most; the host checks it before a plugin route runs
/// (``RouteDefinition/minimumRole``).
public enum MemberRole: String, Sendable, Comparable, CaseIterable, Codable {
    /// Sees the org's catalog and installs.
    case member
    /// Also registers and publishes the org's own apps.
    case developer
    /// Also installs apps, edits their config and invites people.
    case admin
    /// Everything, API tokens included.
    case owner

    /// `true` when `a` is a lesser role than `b` (``member`` < ``developer`` < ``admin`` < ``owner``).
    public static func < (a: MemberRole, b: MemberRole) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
