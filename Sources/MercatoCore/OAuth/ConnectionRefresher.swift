public import Logging
public import ServiceLifecycle

/// Refreshes access tokens ahead of expiry in the background, every `interval`, until the
/// server stops. Each refresh goes through ``TokenRefresher``'s single flight and database
/// lease, so it never races an on-demand refresh here or on another node.
public struct ConnectionRefresher: Service {
    let tokens: TokenRefresher
    let interval: Duration
    let logger: Logger

    public init(tokens: TokenRefresher, interval: Duration, logger: Logger) {
        self.tokens = tokens
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicWorker("oauth refresh pass", every: interval, logger: logger).run {
            await tokens.refreshDue()
            return 0
        }
    }
}
