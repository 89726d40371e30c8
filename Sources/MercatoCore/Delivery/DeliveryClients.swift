public import AsyncHTTPClient
import NIOCore
public import ServiceLifecycle
import Synchronization

/// The HTTP clients of webhook delivery, each bound to the address ``AddressGuard`` checked.
///
/// async-http-client resolves a URL's host itself when it connects; a client made with a DNS
/// override for (host → checked address) connects to that address instead, while the `Host`
/// header, TLS server name and certificate check still use the host. One client per (host,
/// address) pair, made on first use; URLs with a numeric host share one client. The least
/// recently used client beyond ``limit`` is retired and shut down once anything it was sending
/// has had time to end. Redirects are never followed (a 3xx is a failure, so it cannot lead to
/// an address that was not checked).
public final class DeliveryClients: Sendable {
    /// Pinned clients kept at once.
    public static let limit = 256
    /// Connections each client keeps to its endpoint.
    static let connectionsPerHost = 64

    private struct State {
        var pinned: [String: (client: HTTPClient, used: UInt64)] = [:]
        var retired: [ObjectIdentifier: HTTPClient] = [:]
        var tick: UInt64 = 0
        var closed = false
    }

    private let direct: HTTPClient
    private let state = Mutex(State())
    /// How long a retired client may still be answering a request.
    private let grace: Duration

    /// `grace`: at least the delivery timeout.
    public init(grace: Duration = .seconds(60)) {
        self.grace = grace
        self.direct = Self.makeClient(overriding: nil)
    }

    static func makeClient(overriding override: (host: String, address: String)?) -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connectionsPerHost)
        if let override { configuration.dnsOverride = [override.host: override.address] }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The client that connects to `address` for URLs on `host`.
    public func client(host: String, address: String) -> HTTPClient {
        if host == address { return direct }
        let key = host + "\u{0}" + address
        let (client, evicted) = state.withLock { state -> (HTTPClient, HTTPClient?) in
            state.tick &+= 1
            if state.closed { return (direct, nil) }
            if let found = state.pinned[key] {
                state.pinned[key]?.used = state.tick
                return (found.client, nil)
            }
            let made = Self.makeClient(overriding: (host, address))
            state.pinned[key] = (made, state.tick)
            guard state.pinned.count > Self.limit, let oldest = state.pinned.min(by: { $0.value.used < $1.value.used }) else { return (made, nil) }
            state.pinned[oldest.key] = nil
            state.retired[ObjectIdentifier(oldest.value.client)] = oldest.value.client
            return (made, oldest.value.client)
        }
        if let evicted { retire(evicted) }
        return client
    }

    private func retire(_ client: HTTPClient) {
        let id = ObjectIdentifier(client)
        let grace = self.grace
        Task { [self] in
            try? await Task.sleep(for: grace)
            if let client = state.withLock({ $0.retired.removeValue(forKey: id) }) { try? await client.shutdown() }
        }
    }

    /// Shuts every client down; later requests fail.
    public func shutdown() async throws {
        let all = state.withLock { state -> [HTTPClient] in
            state.closed = true
            defer { state.pinned = [:]; state.retired = [:] }
            return state.pinned.values.map(\.client) + Array(state.retired.values)
        }
        for client in all { try? await client.shutdown() }
        try await direct.shutdown()
    }

    /// How many pinned clients are kept (for tests).
    public var pinnedCount: Int { state.withLock { $0.pinned.count } }
}

extension DeliveryClients: Service {
    /// Keeps the clients until the service group shuts down, then shuts them down. Placed
    /// before the delivery workers in the group, it stops after them.
    public func run() async throws {
        try? await gracefulShutdown()
        try await shutdown()
    }
}
