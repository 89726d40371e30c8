import Foundation
@testable import MercatoCore
import Logging
import Synchronization
import Testing

/// Background loops rest longer while idle and come back to their pace when work of their kind
/// is written in this process.
@Suite("Periodic workers and their wakeups")
struct PeriodicWorkerTests {
    @Test func aWaitEndsAtItsTimeoutAtASignalOrAtOnceForASignalNotSeen() async throws {
        let wakeup = Wakeup()
        let seen = wakeup.signals
        var started = ContinuousClock.now
        #expect(await wakeup.wait(upTo: .milliseconds(50), seen: seen) == seen)
        #expect(ContinuousClock.now - started >= .milliseconds(45))
        // A signal given while waiting ends the wait.
        started = ContinuousClock.now
        let waiting = Task { await wakeup.wait(upTo: .seconds(10), seen: seen) }
        try await Task.sleep(for: .milliseconds(30))
        wakeup.signal()
        #expect(await waiting.value == seen + 1)
        #expect(ContinuousClock.now - started < .seconds(5))
        // A signal given before the wait (one the waiter has not seen) ends it at once.
        started = ContinuousClock.now
        #expect(await wakeup.wait(upTo: .seconds(10), seen: seen) == seen + 1)
        #expect(ContinuousClock.now - started < .seconds(5))
        // Cancelling the waiting task ends it too.
        started = ContinuousClock.now
        let cancelled = Task { await wakeup.wait(upTo: .seconds(10), seen: seen + 1) }
        try await Task.sleep(for: .milliseconds(30))
        cancelled.cancel()
        _ = await cancelled.value
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// Timings are compared with the rests in force, not with the wall clock: the suite runs
    /// beside hundreds of tests on two cores, where a 20 ms sleep can take a second.
    @Test func anIdleWorkerBacksOffAndASignalBringsItBack() async throws {
        let wakeup = Wakeup()
        let passes = Passes()
        let worker = PeriodicWorker("test", every: .milliseconds(20), restingUpTo: .seconds(60), wokenBy: wakeup,
                                    logger: Logger(label: "test"))
        let loop = Task {
            await worker.run {
                passes.times.withLock { $0.append(.now) }
                return 0
            }
        }
        func wait(for count: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while passes.times.withLock({ $0.count }) < count && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        }
        // Eight idle passes: rests of 20, 40, ... 1,280 ms between them, each at least the last
        // doubled (a late timer only makes a rest longer).
        try await wait(for: 8)
        let idle = passes.times.withLock { $0 }
        #expect(idle.count >= 8)
        let gaps = zip(idle.dropFirst(), idle).map { $0 - $1 }
        #expect(gaps.count >= 7 && gaps[6] >= .milliseconds(1_280), "\(gaps)")
        // The rest in force is now 2.56 s: a signal brings the next pass well before it ends.
        let signalled = ContinuousClock.now
        wakeup.signal()
        try await wait(for: idle.count + 1)
        let after = passes.times.withLock { $0.filter { $0 > signalled } }
        #expect(!after.isEmpty)
        if let first = after.first { #expect(first - signalled < .milliseconds(2_000), "\(first - signalled)") }
        loop.cancel()
        _ = await loop.value
    }
}

/// When a worker's passes ran.
private final class Passes: Sendable {
    let times = Mutex<[ContinuousClock.Instant]>([])
}
