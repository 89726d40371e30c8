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
