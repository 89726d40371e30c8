public import Metrics
import Synchronization

/// The counters of one metric (a label and up to three dimension names), made once per set of
/// dimension values and kept, found by those values alone: no factory lookup (a lock, a
/// registry dictionary, a new handle) and no dimensions array built on every increment. One
/// family per owner (gateway, middleware, plugin host), built after the metrics factory was
/// bootstrapped. The value sets on these paths are small and fixed (outcome codes, routes,
/// statuses); past `limit` of them a handle is made per call instead of kept.
public final class CounterFamily: Sendable {
    private let table: HandleTable<Counter>

    public init(_ label: String, _ names: String..., limit: Int = 4096) {
        table = HandleTable(label: label, names: names, limit: limit) { Counter(label: $0, dimensions: $1) }
    }

    /// The counter for these dimension values, in the order of the family's names.
    public func callAsFunction(_ first: String = "", _ second: String = "", _ third: String = "") -> Counter {
        table.handle(DimensionValues(first: first, second: second, third: third))
    }
}

/// ``CounterFamily``'s twin for timers.
public final class TimerFamily: Sendable {
    private let table: HandleTable<Metrics.Timer>

    public init(_ label: String, _ names: String..., limit: Int = 4096) {
        table = HandleTable(label: label, names: names, limit: limit) { Metrics.Timer(label: $0, dimensions: $1) }
    }

    public func callAsFunction(_ first: String = "", _ second: String = "", _ third: String = "") -> Metrics.Timer {
        table.handle(DimensionValues(first: first, second: second, third: third))
    }
}

/// A family's dimension values, hashed and compared in place.
struct DimensionValues: Hashable, Sendable {
    let first: String
    let second: String
    let third: String
}

/// The handles a family has made, by their values. Internal and used with concrete handle types
/// only, so the compiler specializes it (no generic metadata looked up per call).
final class HandleTable<Handle: Sendable>: Sendable {
    private let handles = Mutex<[DimensionValues: Handle]>([:])
    private let label: String
    private let names: [String]
    private let limit: Int
    private let make: @Sendable (String, [(String, String)]) -> Handle

    init(label: String, names: [String], limit: Int, make: @escaping @Sendable (String, [(String, String)]) -> Handle) {
        precondition(names.count <= 3, "a metric family has at most three dimensions")
        self.label = label
        self.names = names
        self.limit = limit
        self.make = make
    }

    func handle(_ values: DimensionValues) -> Handle {
        if let found = handles.withLock({ $0[values] }) { return found }
        let all = [values.first, values.second, values.third]
        let made = make(label, names.indices.map { (names[$0], all[$0]) })
        handles.withLock { if $0.count < limit { $0[values] = made } }
        return made
    }
}
