public import Logging
public import MercatoCrypto
public import MercatoHooks
public import MercatoStorage

/// Everything a running Mercato holds: storage, the vault, the plugins' capabilities and the
/// services built on them. The HTTP layer and the CLI both start from one of these.
public final class MercatoRuntime: Sendable {
    public let settings: Settings
    public let database: Database
    public let vault: Vault
    public let capabilities: Capabilities
    public let clock: WallClock
    public let secrets: SecretStore
    public let tenancy: TenancyService
    public let registry: RegistryService
    public let installs: InstallService
    public let plugins: PluginHost
    public let gateway: CommandGateway
    public let commandLog: CommandLogService
    public let hooks: HookDispatcher
    public let deliveryLog: DeliveryLogService
    public let providers: ProviderService
    public let connections: ConnectionService
    /// What plugins are offered (outbox, config).
    public let pluginAPI: any PluginAPI
    public let logger: Logger

    public init(settings: Settings, database: Database, vault: Vault, plugins: [any MercatoPlugin], clock: WallClock = .system,
                commandTimeout: Duration = .seconds(10), hookTimeout: Duration = .seconds(30), crashLoop: CrashLoopRule = CrashLoopRule(),
                hookRetrySchedule: [Duration] = HookDispatcher.defaultRetrySchedule, logger: Logger) throws {
        self.settings = settings
        self.database = database
        self.vault = vault
        let host = try PluginHost(plugins: plugins, logger: logger, clock: clock, commandTimeout: commandTimeout, hookTimeout: hookTimeout,
                                  crashLoop: crashLoop, storage: HostStorageProvider(database: database, clock: clock))
        self.plugins = host
        self.capabilities = host.capabilities
        self.clock = clock
        self.secrets = SecretStore(vault: vault)
        self.tenancy = TenancyService(database: database, operatorToken: settings.operatorToken)
        self.registry = RegistryService(database: database, secrets: secrets, capabilities: capabilities, clock: clock)
        self.installs = InstallService(database: database, secrets: secrets, clock: clock)
        self.providers = ProviderService(database: database, secrets: secrets, clock: clock)
        self.connections = ConnectionService(database: database, secrets: secrets, providers: providers, settings: settings, clock: clock, logger: logger)
        let api = HostPluginAPI(database: database, installs: installs, connections: connections, clock: clock)
        self.pluginAPI = api
        self.commandLog = CommandLogService(database: database, clock: clock)
        self.hooks = HookDispatcher(database: database, host: host, api: api, clock: clock, logger: logger, retrySchedule: hookRetrySchedule)
        self.deliveryLog = DeliveryLogService(database: database, registry: registry, clock: clock)
        self.gateway = CommandGateway(database: database, registry: registry, host: host, api: api, secrets: secrets, clock: clock, logger: logger,
                                      failureLimit: RateLimiter.Limit(perSecond: Double(settings.refusedCommandsPerSecond), burst: settings.refusedCommandsBurst))
        self.logger = logger
    }

    /// Opens storage and the keyring named by `settings` and applies pending migrations.
    public static func open(settings: Settings, plugins: [any MercatoPlugin], logger: Logger, migrate: Bool = true) async throws -> MercatoRuntime {
        let vault = try KeyringSource(settings: settings).makeVault()
        let database = try await Database.open(settings.database, logger: logger)
        if migrate {
            do { try await Schema.runner.migrate(database, logger: logger) } catch {
                await database.close()
                throw error
            }
        }
        do {
            return try MercatoRuntime(settings: settings, database: database, vault: vault, plugins: plugins, logger: logger)
        } catch {
            await database.close()
            throw error
        }
    }

    /// `true` when storage answers and every migration is applied.
    public func isReady() async -> Bool {
        (try? await Schema.runner.isCurrent(database)) ?? false
    }

    public func close() async { await database.close() }
}
