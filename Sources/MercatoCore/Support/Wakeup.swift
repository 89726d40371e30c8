import NIOCore
import NIOPosix
import Synchronization

/// Tells resting background workers that work of their kind was just written in this process
/// (an outbox event, an activity row, a due delivery), so a worker that backed off while idle
/// looks again at its base pace instead of after its longest rest. Only a hint: a signal given
/// before the write commits, or lost, costs at most that longest rest, and work written by
/// another node is found when the rest ends.
///
/// Every waiter sees every signal: each keeps the count of signals it has seen, and a wait that
/// starts after a signal it has not seen returns at once.
public final class Wakeup: Sendable {
    /// Wakes the webhook fan-out: an outbox event was written (``Outbox``).
    public static let fanOut = Wakeup()
    /// Wakes the hook dispatcher: an outbox event a hook takes, or an activity row, was written.
    public static let hooks = Wakeup()
    /// Wakes the delivery senders: deliveries were made due (fan-out, retry, recover, test).
    public static let senders = Wakeup()

    private struct State {
        var signals: UInt64 = 0
        var nextWaiter = 0
        var waiters: [Int: (continuation: CheckedContinuation<Void, Never>, timer: Scheduled<Void>?)] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// The number of signals given so far (a waiter's starting point).
    public var signals: UInt64 { state.withLock { $0.signals } }

    /// Wakes every waiter.
    public func signal() {
        let woken = state.withLock { state -> [(continuation: CheckedContinuation<Void, Never>, timer: Scheduled<Void>?)] in
            state.signals &+= 1
            defer { state.waiters.removeAll(keepingCapacity: true) }
            return Array(state.waiters.values)
        }
        for waiter in woken {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }

    /// Returns after `timeout`, at a signal after the `seen`-th, or when the task is cancelled;
    /// answers the signals given so far.
    @discardableResult
    public func wait(upTo timeout: Duration, seen: UInt64) async -> UInt64 {
        let id = state.withLock { state -> Int in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.signals != seen || Task.isCancelled { return true }
                    state.waiters[id] = (continuation, nil)
                    return false
                }
                if now { return continuation.resume() }
                let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
                    end(id)
                }
                let ended = state.withLock { state -> Bool in
                    guard state.waiters[id] != nil else { return true }
                    state.waiters[id]?.timer = timer
                    return false
                }
                if ended { timer.cancel() }
            }
        } onCancel: {
            end(id)
        }
        return signals
    }

    /// Ends one wait (its timer, or its task's cancellation), if it is still waiting.
    private func end(_ id: Int) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume()
    }
}
