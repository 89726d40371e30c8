public import MercatoHooks

/// The authenticated caller of the management API.
public enum Principal: Sendable, Equatable {
    /// The platform owner: creates orgs, sets providers and rate limits. Belongs to no org.
    case `operator`(tokenID: String)
    /// A user or service account acting in one org with one role.
    case member(tokenID: String, principalID: String, orgID: String, role: MemberRole)

    /// The token that authenticated the caller.
    public var tokenID: String {
        switch self {
        case .operator(let id): id
        case .member(let id, _, _, _): id
        }
    }

    /// The caller's org, `nil` for the operator.
    public var orgID: String? {
        switch self {
        case .operator: nil
        case .member(_, _, let org, _): org
        }
    }

    public var isOperator: Bool {
        if case .operator = self { return true }
        return false
    }

    /// The caller's org when the caller holds at least `role` there; 403 otherwise (the
    /// operator belongs to no org). `action` completes "... needs the {role} role or higher".
    public func org(atLeast role: MemberRole, to action: String) throws -> String {
        guard let org = orgID else { throw APIError.forbidden("The operator token belongs to no org; use a token of the org.") }
        guard has(role, in: org) else { throw APIError.forbidden("\(action) needs the \(role.rawValue) role or higher.") }
        return org
    }

    /// `true` when the caller acts in `org` with at least `role`.
    public func has(_ role: MemberRole, in org: String) -> Bool {
        guard case .member(_, _, let mine, let granted) = self else { return false }
        return mine == org && granted >= role
    }
}
