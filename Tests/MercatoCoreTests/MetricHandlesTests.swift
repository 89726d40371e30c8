@testable import MercatoCore
import Testing

/// Handles are kept per label and dimensions: the same set finds the same handle, any other
/// (a value, a name, the split between them, one dimension more) its own.
@Suite("Metric handles")
struct MetricHandlesTests {
    @Test func aLabelSetFindsItsOwnHandle() {
        let handles = MetricHandles()
        func counter(_ label: String, _ dimensions: [(String, String)]) -> ObjectIdentifier { ObjectIdentifier(handles.counter(label, dimensions)) }
        let first = counter("requests", [("route", "/a"), ("status", "200")])
        #expect(counter("requests", [("route", "/a"), ("status", "200")]) == first)
        let others = [
            counter("requests", [("route", "/a"), ("status", "201")]),
            counter("requests", [("route", "/b"), ("status", "200")]),
            counter("requests", [("route", "/a"), ("code", "200")]),
            counter("requests", [("route", "/a")]),
            counter("requests", [("route", "/a"), ("status", "200"), ("method", "GET")]),
            counter("requests", [("rout", "e/a"), ("status", "200")]),
            counter("replies", [("route", "/a"), ("status", "200")]),
        ]
        #expect(!others.contains(first))
        #expect(Set(others).count == others.count)
        #expect(ObjectIdentifier(handles.timer("requests", [("route", "/a")])) == ObjectIdentifier(handles.timer("requests", [("route", "/a")])))
        // Past the limit a handle is made per call, not kept.
        let small = MetricHandles(limit: 1)
        _ = small.counter("a")
        let kept = small.counter("a"), again = small.counter("a")
        let made = small.counter("b"), madeAgain = small.counter("b")
        let keptSame = ObjectIdentifier(kept) == ObjectIdentifier(again)
        let madeSame = ObjectIdentifier(made) == ObjectIdentifier(madeAgain)
        #expect(keptSame)
        #expect(!madeSame)
        withExtendedLifetime((kept, again, made, madeAgain)) {}
    }
}
