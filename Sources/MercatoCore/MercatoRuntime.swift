public import Logging
public import MercatoCrypto
public import MercatoHooks
public import MercatoStorage
public import ServiceLifecycle

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
    /// API tokens' hourly limits (shared by the nodes on PostgreSQL).
    public let tokenLimits: TokenLimits
    /// API tokens' usage log and `last_used_at`, written in batches.
    public let tokenUsage: TokenUsageLog
    /// `Idempotency-Key` on the management API's POSTs (answers kept sealed).
    public let apiIdempotency: APIIdempotency
    /// People, invitations and browser sessions (the pages' sign-in).
    public let people: PeopleService
    public let registry: RegistryService
    /// Every stored manifest, decoded once (shared by the services below).
    public let manifests: Manifests
    public let installs: InstallService
    public let plugins: PluginHost
    public let gateway: CommandGateway
    public let commandLog: CommandLogService
    public let hooks: HookDispatcher
    public let deliveryLog: DeliveryLogService
    /// The org's own webhook endpoints (CONTRACT §10), receivers of the same delivery path.
    public let orgWebhooks: OrgWebhookService
    public let providers: ProviderService
    /// Gives grants back to providers.
    public let revoker: ConnectionRevoker
    /// An admin connecting an install to an outside account.
    public let connectFlow: ConnectFlow
    /// Access tokens for apps, refreshed ahead of expiry.
    public let tokens: TokenRefresher
    /// Webhook delivery's schedule, timeout and limits, from the settings.
    public let deliveryPolicy: DeliveryPolicy
    /// The plugins' key-value storage.
    public let pluginStorage: HostStorageProvider
    /// What plugins are offered (outbox, config).
    public let pluginAPI: any PluginAPI
    public let logger: Logger

    public init(settings: Settings, database: Database, vault: Vault, plugins: [any MercatoPlugin], clock: WallClock = .system,
                commandTimeout: Duration = .seconds(10), hookTimeout: Duration = .seconds(30), crashLoop: CrashLoopRule = CrashLoopRule(),
                hookRetrySchedule: [Duration] = HookDispatcher.defaultRetrySchedule, logger: Logger) throws {
        self.settings = settings
        self.database = database
        self.vault = vault
        let manifests = Manifests()
        self.manifests = manifests
        // Plugins' events get their deliveries in the transaction that writes them.
        let fanOut = FanOut(manifests: manifests)
        let pluginStorage = HostStorageProvider(database: database, clock: clock, manifests: plugins.map { type(of: $0).manifest }, fanOut: fanOut)
        self.pluginStorage = pluginStorage
        let host = try PluginHost(plugins: plugins, logger: logger, clock: clock, commandTimeout: commandTimeout, hookTimeout: hookTimeout,
                                  crashLoop: crashLoop, storage: pluginStorage)
        self.plugins = host
        self.capabilities = host.capabilities
        self.clock = clock
        self.secrets = SecretStore(vault: vault)
        self.tenancy = TenancyService(database: database, operatorToken: settings.operatorToken)
        self.tokenLimits = TokenLimits(database: database, clock: clock)
        self.tokenUsage = TokenUsageLog(database: database, logger: logger)
        self.apiIdempotency = APIIdempotency(database: database, vault: vault, clock: clock)
        self.people = PeopleService(database: database, clock: clock, publicURL: settings.publicURL)
        self.registry = RegistryService(database: database, secrets: secrets, capabilities: capabilities, manifests: manifests, clock: clock)
        self.providers = ProviderService(database: database, secrets: secrets, clock: clock)
        self.revoker = ConnectionRevoker(providers: providers, settings: settings, logger: logger)
        self.installs = InstallService(database: database, secrets: secrets, manifests: manifests, revoker: revoker, clock: clock)
        let oauth = OAuthDependencies(database: database, secrets: secrets, providers: providers, installs: installs, revoker: revoker,
                                      settings: settings, clock: clock, logger: logger)
        self.connectFlow = ConnectFlow(oauth)
        self.tokens = TokenRefresher(oauth)
        let api = HostPluginAPI(database: database, installs: installs, tokens: tokens, clock: clock, fanOut: fanOut)
        self.pluginAPI = api
        self.commandLog = CommandLogService(database: database, clock: clock)
        self.hooks = HookDispatcher(database: database, host: host, api: api, clock: clock, logger: logger, retrySchedule: hookRetrySchedule)
        self.deliveryLog = DeliveryLogService(database: database, registry: registry, clock: clock)
        self.orgWebhooks = OrgWebhookService(database: database, secrets: secrets, capabilities: capabilities, log: deliveryLog,
                                             addressGuard: AddressGuard(allowPrivate: settings.allowPrivateWebhooks), clock: clock)
        self.gateway = CommandGateway(database: database, registry: registry, host: host, api: api, secrets: secrets, clock: clock, logger: logger,
                                      failureLimit: RateLimiter.Limit(perSecond: Double(settings.refusedCommandsPerSecond), burst: settings.refusedCommandsBurst))
        self.deliveryPolicy = DeliveryPolicy(settings: settings)
        self.logger = logger
    }

    /// The background workers of a server, in the order they start (each a Service; the
    /// composition root puts them in its group behind start-up).
    public func workers(deliveryClients: DeliveryClients) -> [any Service] {
        [
            KeyringWatcher(vault: vault, logger: logger),
            hooks,
            DeliveryService(database: database, registry: registry, clients: deliveryClients, clock: clock, logger: logger,
                            policy: deliveryPolicy, addressGuard: AddressGuard(allowPrivate: settings.allowPrivateWebhooks)),
            ConnectionRefresher(tokens: tokens, interval: .seconds(settings.oauthRefreshScanSeconds), logger: logger),
            RetentionService(database: database, clock: clock, logger: logger, idempotencyHours: settings.idempotencyHours,
                             commandLogDays: settings.commandLogDays, deliveryLogDays: settings.deliveryLogDays),
        ]
    }

    /// Opens storage (standalone, for the CLI and tests) and the keyring named by `settings`
    /// and applies pending migrations. A server builds its runtime over storage that runs as
    /// a service instead (`mercato serve`'s composition root).
    public static func open(settings: Settings, plugins: [any MercatoPlugin], logger: Logger, migrate: Bool = true) async throws -> MercatoRuntime {
        let vault = try KeyringSource(settings: settings).makeVault()
        let database = try await Database.open(settings.database, logger: logger, deadlines: settings.storageDeadlines)
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
