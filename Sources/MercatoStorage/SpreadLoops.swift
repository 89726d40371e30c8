import Dispatch
import NIOCore
import NIOPosix

/// The shared event loops, handed out in turn even when asked from one of them.
///
/// PostgresNIO opens each pooled connection on `any()` of its group, and the shared group's
/// `any()` answers the calling thread's own loop. The pool runs on one of those loops (Swift
/// concurrency runs there), so every connection landed on that one loop: the statements'
/// results, and the tasks awaiting them, crowded it while the other loop idled (a PostgreSQL
/// `ping` profile: 64% of the samples on one loop, 33% on the other). Here `any()` is `next()`:
/// the connections spread over every loop.
final class SpreadLoops: EventLoopGroup {
    private let base: MultiThreadedEventLoopGroup

    init(_ base: MultiThreadedEventLoopGroup = .singleton) {
        self.base = base
    }

    func next() -> any EventLoop { base.next() }

    func any() -> any EventLoop { base.next() }

    func makeIterator() -> EventLoopIterator { base.makeIterator() }

    /// The shared group lives as long as the process: it is not shut down through this view.
    func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        queue.async { callback(nil) }
    }
}
