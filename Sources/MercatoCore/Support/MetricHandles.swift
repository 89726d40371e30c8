public import Metrics
import Synchronization

/// Metric handles made once per label set and kept, instead of a factory lookup (a lock, a
/// registry dictionary and a new handle) on every increment. One instance per owner (gateway,
/// middleware), so handles always come from the factory bootstrapped before that owner was built.
/// The label sets on these paths are small and fixed (outcome codes, routes, statuses).
public final class MetricHandles: Sendable {
    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[Key: Metrics.Timer]>([:])
    private let recorders = Mutex<[Key: Recorder]>([:])
    /// More distinct label sets than this are not kept (a handle is made per call instead).
    let limit: Int

    /// A label and its dimensions as the caller passed them: hashed and compared in place, no
    /// key text built per call.
    private struct Key: Hashable {
        let label: String
        let dimensions: [(String, String)]

        func hash(into hasher: inout Hasher) {
            hasher.combine(label)
            hasher.combine(dimensions.count)
            for (name, value) in dimensions {
                hasher.combine(name)
                hasher.combine(value)
            }
        }

        static func == (a: Key, b: Key) -> Bool {
            a.label == b.label && a.dimensions.count == b.dimensions.count
                && zip(a.dimensions, b.dimensions).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        }
    }

    public init(limit: Int = 4096) {
        self.limit = limit
    }

    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        let key = Key(label: label, dimensions: dimensions)
        if let found = counters.withLock({ $0[key] }) { return found }
        let made = Counter(label: label, dimensions: dimensions)
        counters.withLock { if $0.count < limit { $0[key] = made } }
        return made
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Metrics.Timer {
        let key = Key(label: label, dimensions: dimensions)
        if let found = timers.withLock({ $0[key] }) { return found }
        let made = Metrics.Timer(label: label, dimensions: dimensions)
        timers.withLock { if $0.count < limit { $0[key] = made } }
        return made
    }

    public func recorder(_ label: String, _ dimensions: [(String, String)] = []) -> Recorder {
        let key = Key(label: label, dimensions: dimensions)
        if let found = recorders.withLock({ $0[key] }) { return found }
        let made = Recorder(label: label, dimensions: dimensions)
        recorders.withLock { if $0.count < limit { $0[key] = made } }
        return made
    }
}
