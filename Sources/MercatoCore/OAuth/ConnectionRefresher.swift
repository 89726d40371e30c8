public import ServiceLifecycle

/// Refreshes access tokens ahead of expiry in the background, every `interval`, until the
/// server stops. Each refresh goes through ``ConnectionService``'s single flight and database
/// lease, so it never races an on-demand refresh here or on another node.
public struct ConnectionRefresher: Service {
    let connections: ConnectionService
    let interval: Duration

    public init(connections: ConnectionService, interval: Duration) {
        self.connections = connections
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await connections.refreshDue()
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
        }
    }
}
