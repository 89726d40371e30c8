public import Foundation
import Logging
import MercatoStorage
import Metrics
import Synchronization

/// When a plugin is disabled: `failures` crashes or timeouts within `window`.
public struct CrashLoopRule: Sendable {
    public var failures: Int
    public var window: Duration

    public init(failures: Int = 3, window: Duration = .seconds(3600)) {
        self.failures = failures
        self.window = window
    }
}

/// One plugin's state, as `/readyz` and `GET /api/v1/plugins` show it.
public struct PluginStatus: Sendable, Equatable {
    public var id: String
    public var version: String
    public var disabled: Bool
    public var disabledAt: Date?
    /// Why: "3 failures in 60 min (last: timeout in handle)", "activation failed", ...
    public var reason: String?
    /// Crashes and timeouts inside the rule's window.
    public var recentFailures: Int
}

/// Failures per plugin and the crash-loop rule. State is per node: each node disables a
/// plugin that fails there, and the operator enables it again (`POST /api/v1/plugins/{id}/enable`).
final class PluginHealth: Sendable {
    struct State {
        var failures: [Int64] = []
        var disabledAt: Int64?
        var reason: String?
    }

    let rule: CrashLoopRule
    let clock: WallClock
    let logger: Logger
    private let states: Mutex<[String: State]>

    init(rule: CrashLoopRule, clock: WallClock, ids: [String], logger: Logger) {
        self.rule = rule
        self.clock = clock
        self.logger = logger
        self.states = Mutex(Dictionary(uniqueKeysWithValues: ids.map { ($0, State()) }))
        for id in ids { Self.gauge(id).record(0) }
    }

    func isDisabled(_ id: String) -> Bool { states.withLock { $0[id]?.disabledAt != nil } }

    /// Counts a crash or timeout; disables the plugin when the rule says so.
    func recordFailure(_ id: String, hook: String, outcome: String) {
        let now = clock.millis
        let windowMillis = rule.window.components.seconds * 1000
        let disabledNow = states.withLock { states -> Bool in
            var state = states[id] ?? State()
            state.failures = state.failures.filter { now - $0 < windowMillis } + [now]
            defer { states[id] = state }
            guard state.disabledAt == nil, state.failures.count >= rule.failures else { return false }
            state.disabledAt = now
            state.reason = "\(state.failures.count) failures in \(windowMillis / 60_000) min (last: \(outcome) in \(hook))"
            return true
        }
        if disabledNow { announce(id) }
    }

    func disable(_ id: String, reason: String) {
        let now = clock.millis
        states.withLock { states in
            var state = states[id] ?? State()
            state.disabledAt = now
            state.reason = reason
            states[id] = state
        }
        announce(id)
    }

    func enable(_ id: String) {
        states.withLock { $0[id] = State() }
        Self.gauge(id).record(0)
        logger.notice("plugin enabled", metadata: ["plugin": "\(id)"])
    }

    func status(_ id: String, version: String) -> PluginStatus {
        let now = clock.millis
        let windowMillis = rule.window.components.seconds * 1000
        let state = states.withLock { $0[id] ?? State() }
        return PluginStatus(id: id, version: version, disabled: state.disabledAt != nil, disabledAt: state.disabledAt.map { Timestamp.date(millis: $0) },
                            reason: state.reason, recentFailures: state.failures.filter { now - $0 < windowMillis }.count)
    }

    private func announce(_ id: String) {
        Self.gauge(id).record(1)
        let reason = states.withLock { $0[id]?.reason } ?? ""
        logger.critical("plugin disabled", metadata: ["plugin": "\(id)", "reason": "\(reason)"])
    }

    private static func gauge(_ id: String) -> Gauge { Gauge(label: "mercato_plugin_disabled", dimensions: [("plugin", id)]) }
}
