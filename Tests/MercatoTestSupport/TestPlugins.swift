import AuditPlugin
import ConnectionsPlugin
public import Foundation
import InboundPlugin
import InstallPlugin
import KVPlugin
public import MercatoCore
public import MercatoHooks
import NotificationsPlugin
import Synchronization
import TasksPlugin

/// The built-in plugins, as the executable registers them.
public enum TestPlugins {
    public static let all: [any MercatoPlugin] = [InstallPlugin(), KVPlugin(), NotificationsPlugin(), TasksPlugin(), ConnectionsPlugin(), AuditPlugin(), InboundPlugin()]

    public static func capabilities() throws -> Capabilities {
        try Capabilities(manifests: all.map { type(of: $0).manifest })
    }
}

/// A clock a test moves by hand.
public final class ManualClock: Sendable {
    private let current: Mutex<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = Mutex(start) }
    public func advance(by seconds: TimeInterval) { current.withLock { $0 += seconds } }
    public var wallClock: WallClock { WallClock { self.current.withLock { $0 } } }
}
