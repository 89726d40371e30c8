public import Logging
public import MercatoStorage
public import ServiceLifecycle

/// What a server does between storage starting and serving, as one service of the group:
/// migrations and the plugins' org index (``HostStorageProvider/reconcileOrgIndex(logger:)``),
/// the first operator token (shown once through `announceOperatorToken`, never logged), the
/// plugins' activation and the catalog import; then ``ready`` opens, and the
/// workers and the HTTP server (waiting on it) start. At shutdown it deactivates the plugins
/// (bounded), after the services placed behind it in the group have stopped.
public struct ServerStartup: Service {
    let runtime: MercatoRuntime
    let logger: Logger
    let announceOperatorToken: @Sendable (String) -> Void
    let announceFirstOwner: (@Sendable (String) -> Void)?
    /// Opens when start-up is done.
    public let ready = Latch()

    /// `announceFirstOwner`, when given, is told the invitation link of a first owner on a
    /// database without any org (the first start of `scripts/serve`).
    public init(runtime: MercatoRuntime, logger: Logger, announceOperatorToken: @escaping @Sendable (String) -> Void,
                announceFirstOwner: (@Sendable (String) -> Void)? = nil) {
        self.runtime = runtime
        self.logger = logger
        self.announceOperatorToken = announceOperatorToken
        self.announceFirstOwner = announceFirstOwner
    }

    public func run() async throws {
        try await runtime.database.waitUntilRunning()
        try await Schema.runner.migrate(runtime.database, logger: logger)
        try await runtime.pluginStorage.reconcileOrgIndex(logger: logger)
        if let token = try await runtime.tenancy.bootstrapOperatorToken() { announceOperatorToken(token) }
        if let announceFirstOwner, let link = try await runtime.people.bootstrapFirstOwner() { announceFirstOwner(link) }
        await runtime.plugins.activate(runtime.pluginAPI)
        if let catalog = runtime.settings.catalogDirectory {
            await CatalogImporter(runtime: runtime).importAtStart(catalog, logger: logger)
        }
        ready.open()
        try? await gracefulShutdown()
        await runtime.plugins.deactivate()
    }
}

/// Runs a service once start-up is done (``ServerStartup/ready``); a group shutting down
/// before that ends it without running.
public struct AfterStartup: Service {
    let ready: Latch
    let service: any Service

    public init(_ service: any Service, after ready: Latch) {
        self.ready = ready
        self.service = service
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await ready.wait() }
        guard ready.isOpen, !Task.isShuttingDownGracefully else { return }
        try await service.run()
    }
}
