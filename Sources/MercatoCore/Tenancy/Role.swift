/// What a token may do inside its org, from least to most.
public enum Role: String, Sendable, CaseIterable, Comparable, Codable {
    case member
    case developer
    case admin
    case owner

    private var rank: Int {
        switch self {
        case .member: 0
        case .developer: 1
        case .admin: 2
        case .owner: 3
        }
    }

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// An org's plan; it gates which apps may be installed and default limits.
public enum Plan: String, Sendable, CaseIterable, Comparable, Codable {
    case free
    case pro
    case enterprise

    private var rank: Int {
        switch self {
        case .free: 0
        case .pro: 1
        case .enterprise: 2
        }
    }

    public static func < (a: Plan, b: Plan) -> Bool { a.rank < b.rank }
}

/// The authenticated caller of the management API.
public enum Principal: Sendable, Equatable {
    /// The platform owner: creates orgs, sets providers and rate limits. Belongs to no org.
    case `operator`(tokenID: String)
    /// A user or service account acting in one org with one role.
    case member(tokenID: String, principalID: String, orgID: String, role: Role)

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
    public func org(atLeast role: Role, to action: String) throws -> String {
        guard let org = orgID else { throw APIError.forbidden("The operator token belongs to no org; use a token of the org.") }
        guard has(role, in: org) else { throw APIError.forbidden("\(action) needs the \(role.rawValue) role or higher.") }
        return org
    }

    /// `true` when the caller acts in `org` with at least `role`.
    public func has(_ role: Role, in org: String) -> Bool {
        guard case .member(_, _, let mine, let granted) = self else { return false }
        return mine == org && granted >= role
    }
}
