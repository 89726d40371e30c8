public import Logging
public import MercatoCrypto
public import MercatoStorage

/// Everything a running Mercato holds: storage, the vault and the services built on them.
/// The HTTP layer and the CLI both start from one of these.
public final class MercatoRuntime: Sendable {
    public let settings: Settings
    public let database: Database
    public let vault: Vault
    public let secrets: SecretStore
    public let tenancy: TenancyService
    public let logger: Logger

    public init(settings: Settings, database: Database, vault: Vault, logger: Logger) {
        self.settings = settings
        self.database = database
        self.vault = vault
        self.secrets = SecretStore(vault: vault)
        self.tenancy = TenancyService(database: database, operatorToken: settings.operatorToken)
        self.logger = logger
    }

    /// Opens storage and the keyring named by `settings` and applies pending migrations.
    public static func open(settings: Settings, logger: Logger, migrate: Bool = true) async throws -> MercatoRuntime {
        let vault = try KeyringSource(settings: settings).makeVault()
        let database = try await Database.open(settings.database, logger: logger)
        if migrate {
            do { try await Schema.runner.migrate(database, logger: logger) } catch {
                await database.close()
                throw error
            }
        }
        return MercatoRuntime(settings: settings, database: database, vault: vault, logger: logger)
    }

    /// `true` when storage answers and every migration is applied.
    public func isReady() async -> Bool {
        (try? await Schema.runner.isCurrent(database)) ?? false
    }

    public func close() async { await database.close() }
}
