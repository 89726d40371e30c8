public import Metrics
import Synchronization

/// Metric handles made once per label set and kept, instead of a factory lookup (a lock, a
/// registry dictionary and a new handle) on every increment. One instance per owner (gateway,
/// middleware), so handles always come from the factory bootstrapped before that owner was built.
/// The label sets on these paths are small and fixed (outcome codes, routes, statuses).
public final class MetricHandles: Sendable {
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: Metrics.Timer]>([:])
    private let recorders = Mutex<[String: Recorder]>([:])
    /// More distinct label sets than this are not kept (a handle is made per call instead).
    let limit: Int

    public init(limit: Int = 4096) {
        self.limit = limit
    }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        var key = ""
        // One allocation: the key's length is known.
        key.reserveCapacity(dimensions.reduce(label.utf8.count) { $0 + $1.0.utf8.count + $1.1.utf8.count + 2 })
        key.append(label)
        for (name, value) in dimensions {
            key.append("\u{0}")
            key.append(name)
            key.append("\u{1}")
            key.append(value)
        }
        return key
    }

    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        let key = Self.key(label, dimensions)
        if let found = counters.withLock({ $0[key] }) { return found }
        let made = Counter(label: label, dimensions: dimensions)
        counters.withLock { if $0.count < limit { $0[key] = made } }
        return made
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Metrics.Timer {
        let key = Self.key(label, dimensions)
        if let found = timers.withLock({ $0[key] }) { return found }
        let made = Metrics.Timer(label: label, dimensions: dimensions)
        timers.withLock { if $0.count < limit { $0[key] = made } }
        return made
    }

    public func recorder(_ label: String, _ dimensions: [(String, String)] = []) -> Recorder {
        let key = Self.key(label, dimensions)
        if let found = recorders.withLock({ $0[key] }) { return found }
        let made = Recorder(label: label, dimensions: dimensions)
        recorders.withLock { if $0.count < limit { $0[key] = made } }
        return made
    }
}
