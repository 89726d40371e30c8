@testable import MercatoCore
import Testing

/// A family keeps one handle per set of dimension values: the same values find the same
/// handle, any other (one value, their order, one value more) its own.
@Suite("Metric families")
struct MetricFamilyTests {
    @Test func aValueSetFindsItsOwnHandle() {
        let requests = CounterFamily("requests", "route", "status")
        func counter(_ values: String...) -> ObjectIdentifier {
            ObjectIdentifier(values.count == 1 ? requests(values[0]) : values.count == 2 ? requests(values[0], values[1]) : requests(values[0], values[1], values[2]))
        }
        let first = counter("/a", "200")
        #expect(counter("/a", "200") == first)
        let others = [counter("/a", "201"), counter("/b", "200"), counter("200", "/a"), counter("/a"), counter("/a", "200", "GET"), counter("/a2", "00")]
        #expect(!others.contains(first))
        #expect(Set(others).count == others.count)
        let durations = TimerFamily("durations", "route")
        #expect(ObjectIdentifier(durations("/a")) == ObjectIdentifier(durations("/a")))
        #expect(ObjectIdentifier(durations("/a")) != ObjectIdentifier(durations("/b")))
        // Past the limit a handle is made per call, not kept.
        let small = CounterFamily("small", "k", limit: 1)
        _ = small("a")
        let kept = small("a"), again = small("a")
        let made = small("b"), madeAgain = small("b")
        let keptSame = ObjectIdentifier(kept) == ObjectIdentifier(again)
        let madeSame = ObjectIdentifier(made) == ObjectIdentifier(madeAgain)
        #expect(keptSame)
        #expect(!madeSame)
        withExtendedLifetime((kept, again, made, madeAgain)) {}
    }
}
