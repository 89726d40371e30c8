import Foundation
public import MercatoHooks

/// What an authenticated API token may do: the caller it stands for, its scopes and its
/// requests an hour.
public struct TokenGrant: Sendable, Equatable {
    public let principal: Principal
    /// The scopes in force: the token's own, or every scope its role grants.
    public let scopes: Set<TokenScope>
    public let hourlyLimit: Int

    /// Operator tokens belong to no plan: they get the highest plan's default.
    public static let operatorHourlyLimit = Plan.enterprise.defaultTokenHourlyLimit

    public init(principal: Principal, scopes: Set<TokenScope>, hourlyLimit: Int) {
        self.principal = principal
        self.scopes = scopes
        self.hourlyLimit = hourlyLimit
    }

    /// The scopes of a stored token: its own (never more than the role grants), or the role's.
    public static func scopes(stored: String?, role: MemberRole) -> Set<TokenScope> {
        let granted = Set(TokenScope.granted(to: role))
        guard let stored else { return granted }
        return TokenScope.parse(stored: stored).intersection(granted)
    }
}

/// The optional parts of a new API token as the client sent them (CONTRACT §9); checked by
/// ``TenancyService/createToken(in:name:role:options:by:requestID:)``.
public struct TokenOptions: Sendable {
    public var scopes: [String]?
    /// RFC 3339.
    public var expiresAt: String?
    public var hourlyLimit: Int?

    public init(scopes: [String]? = nil, expiresAt: String? = nil, hourlyLimit: Int? = nil) {
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.hourlyLimit = hourlyLimit
    }

    struct Checked {
        var scopes: Set<TokenScope>?
        var expiresAt: Int64?
        var hourlyLimit: Int?
    }

    /// The options as stored, or 422 naming every field at fault.
    func checked(role: MemberRole, at now: Int64) throws -> Checked {
        var problems: [APIError.FieldProblem] = []
        var result = Checked()
        if let names = scopes {
            var chosen = Set<TokenScope>()
            for name in names {
                guard let scope = TokenScope(rawValue: name) else {
                    problems.append(.init(field: "scopes", message: "unknown scope `\(name.prefix(64))`; use one of "
                                          + TokenScope.allCases.map(\.rawValue).joined(separator: ", ")))
                    continue
                }
                if role < scope.minimumRole {
                    problems.append(.init(field: "scopes", message: "`\(scope.rawValue)` needs the \(scope.minimumRole.rawValue) role or higher"))
                }
                chosen.insert(scope)
            }
            if names.isEmpty { problems.append(.init(field: "scopes", message: "must name at least one scope, or be left out for all the role grants")) }
            result.scopes = chosen
        }
        if let text = expiresAt {
            if let date = try? Date(text, strategy: .iso8601) {
                let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
                if millis <= now { problems.append(.init(field: "expires_at", message: "must be in the future")) }
                result.expiresAt = millis
            } else {
                problems.append(.init(field: "expires_at", message: "must be an RFC 3339 time such as 2027-01-31T00:00:00Z"))
            }
        }
        if let limit = hourlyLimit {
            let range = Plan.tokenHourlyLimitRange
            if !range.contains(limit) {
                problems.append(.init(field: "hourly_limit", message: "must be from \(range.lowerBound) to \(range.upperBound) requests an hour"))
            }
            result.hourlyLimit = limit
        }
        guard problems.isEmpty else { throw APIError.fieldProblems(problems) }
        return result
    }
}
