@testable import MercatoStorage
import NIOCore
import NIOPosix
import Testing

/// PostgreSQL's pooled connections are opened on `any()` of the group they are given; asked
/// from one of the shared loops (where the server's tasks run), the shared group answers that
/// same loop every time. `SpreadLoops` hands out every loop in turn.
@Suite("PostgreSQL connections spread over the event loops")
struct SpreadLoopsTests {
    @Test func anyFromALoopHandsOutEveryLoop() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let count = Array(group.makeIterator()).count
        try #require(count >= 2, "the shared group has one loop per core; this machine's has \(count)")
        let loop = group.next()
        let (shared, spread) = try await loop.submit {
            let spreading = SpreadLoops()
            return ((0 ..< 2 * count).map { _ in ObjectIdentifier(group.any()) },
                    (0 ..< 2 * count).map { _ in ObjectIdentifier(spreading.any()) })
        }.get()
        // The premise: the shared group's own `any()` sticks to the caller's loop.
        #expect(Set(shared) == [ObjectIdentifier(loop)])
        #expect(Set(spread).count == count)
    }
}
