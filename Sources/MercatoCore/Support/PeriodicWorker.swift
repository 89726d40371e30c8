public import Logging
import ServiceLifecycle

/// The one loop of Mercato's background work (delivery, hooks, retention, token refresh, the
/// keyring): runs a pass until the service group shuts down. A pass that handled something is
/// followed by the next at once; after a pass that handled nothing, or failed, the worker rests
/// `interval`, and a graceful shutdown ends the rest at once.
public struct PeriodicWorker: Sendable {
    /// Names the worker in log lines.
    let name: String
    let interval: Duration
    let logger: Logger

    public init(_ name: String, every interval: Duration, logger: Logger) {
        self.name = name
        self.interval = interval
        self.logger = logger
    }

    /// Runs `pass` (answering how much it handled) until graceful shutdown or cancellation.
    public func run(_ pass: () async throws -> Int) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var handled = 0
            do {
                handled = try await pass()
            } catch {
                logger.error("\(name) failed; retrying", metadata: ["error_type": "\(type(of: error))"])
            }
            if handled == 0 {
                do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
            }
        }
    }
}
