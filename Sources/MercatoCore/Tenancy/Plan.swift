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

    /// Requests an hour an API token of the org may send when it was created without its own
    /// `hourly_limit` (CONTRACT §9).
    public var defaultTokenHourlyLimit: Int {
        switch self {
        case .free: 1_000
        case .pro: 10_000
        case .enterprise: 100_000
        }
    }

    /// The bounds of a token's own `hourly_limit`.
    public static let tokenHourlyLimitRange = 1 ... 1_000_000
}
