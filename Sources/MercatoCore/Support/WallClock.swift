public import Foundation

/// The time source of everything time-dependent (secret overlap, expiry), so tests can move it.
public struct WallClock: Sendable {
    public var now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date) { self.now = now }

    public static let system = WallClock { Date() }

    public var millis: Int64 { Int64((now().timeIntervalSince1970 * 1000).rounded(.down)) }
}
