public import Logging
public import MercatoCrypto
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
    public let logger: Logger

    public init(settings: Settings, database: Database, vault: Vault, capabilities: Capabilities, clock: WallClock = .system, logger: Logger) {
        self.settings = settings
        self.database = database
        self.vault = vault
        self.capabilities = capabilities
        self.clock = clock
        self.secrets = SecretStore(vault: vault)
        self.tenancy = TenancyService(database: database, operatorToken: settings.operatorToken)
        self.registry = RegistryService(database: database, secrets: secrets, capabilities: capabilities, clock: clock)
        self.installs = InstallService(database: database, secrets: secrets, clock: clock)
        self.logger = logger
    }

    /// Opens storage and the keyring named by `settings` and applies pending migrations.
    public static func open(settings: Settings, capabilities: Capabilities, logger: Logger, migrate: Bool = true) async throws -> MercatoRuntime {
        let vault = try KeyringSource(settings: settings).makeVault()
        let database = try await Database.open(settings.database, logger: logger)
        if migrate {
            do { try await Schema.runner.migrate(database, logger: logger) } catch {
                await database.close()
                throw error
            }
        }
        return MercatoRuntime(settings: settings, database: database, vault: vault, capabilities: capabilities, logger: logger)
    }

    /// `true` when storage answers and every migration is applied.
    public func isReady() async -> Bool {
        (try? await Schema.runner.isCurrent(database)) ?? false
    }

    public func close() async { await database.close() }
}
