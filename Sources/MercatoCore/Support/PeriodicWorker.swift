public import Logging
import ServiceLifecycle

/// The one loop of Mercato's background work (delivery, hooks, retention, token refresh, the
/// keyring): runs a pass until the service group shuts down. A pass that handled something is
/// followed by the next at once; after a pass that handled nothing, or failed, the worker rests
/// `interval`, and a graceful shutdown ends the rest at once.
///
/// A worker with a ``Wakeup`` rests longer while idle: each empty pass doubles its rest, up to
/// `longest`, and a signal (work of its kind written in this process) brings it back to
/// `interval`, the pace it never exceeds. So an idle node costs storage a few passes a second
/// rather than one per worker each `interval`, and work written here is still found within
/// `interval` (work written by another node within `longest`).
public struct PeriodicWorker: Sendable {
    /// Names the worker in log lines.
    let name: String
    let interval: Duration
    let longest: Duration
    let wakeup: Wakeup?
    let logger: Logger

    public init(_ name: String, every interval: Duration, restingUpTo longest: Duration? = nil, wokenBy wakeup: Wakeup? = nil, logger: Logger) {
        self.name = name
        self.interval = interval
        self.longest = wakeup == nil ? interval : max(interval, longest ?? interval)
        self.wakeup = wakeup
        self.logger = logger
    }

    /// Runs `pass` (answering how much it handled) until graceful shutdown or cancellation.
    public func run(_ pass: () async throws -> Int) async {
        var rest = interval
        var seen = wakeup?.signals ?? 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var handled = 0
            do {
                handled = try await pass()
            } catch {
                logger.error("\(name) failed; retrying", metadata: ["error_type": "\(type(of: error))"])
            }
            guard handled == 0 else {
                rest = interval
                continue
            }
            do {
                if let wakeup {
                    let started = ContinuousClock.now
                    let (resting, since) = (rest, seen)
                    // A graceful shutdown cancels the wait, and the loop ends.
                    let signals = await cancelWhenGracefulShutdown { await wakeup.wait(upTo: resting, seen: since) }
                    if signals != seen {
                        // Woken: look again, but not sooner than `interval` after the last pass.
                        seen = signals
                        rest = interval
                        let waited = ContinuousClock.now - started
                        if waited < interval { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval - waited) } }
                    } else {
                        rest = min(rest * 2, longest)
                    }
                } else {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                }
            } catch {
                return
            }
        }
    }
}
