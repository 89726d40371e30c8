public import Logging
public import MercatoStorage

/// What the two OAuth services (``ConnectFlow`` and ``TokenRefresher``) work with: storage and
/// the vault, the providers, the install lifecycle for state moves, the revoker for grants left
/// behind, and one client for provider calls.
public struct OAuthDependencies: Sendable {
    let database: Database
    let secrets: SecretStore
    let providers: ProviderService
    let installs: InstallService
    let revoker: ConnectionRevoker
    let settings: Settings
    let clock: WallClock
    let logger: Logger
    let client: OAuthClient

    public init(database: Database, secrets: SecretStore, providers: ProviderService, installs: InstallService, revoker: ConnectionRevoker,
                settings: Settings, clock: WallClock, logger: Logger) {
        self.database = database
        self.secrets = secrets
        self.providers = providers
        self.installs = installs
        self.revoker = revoker
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.client = OAuthClient(timeout: .seconds(settings.oauthTimeoutSeconds))
    }
}
