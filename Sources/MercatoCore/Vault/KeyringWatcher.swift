public import Logging
public import MercatoCrypto
public import ServiceLifecycle

/// Re-reads the key file now and then, so that after `mercato keys rotate` this node seals new
/// values under the new version (opening already reloads on an unknown version).
public struct KeyringWatcher: Service {
    let vault: Vault
    let logger: Logger
    let interval: Duration

    public init(vault: Vault, logger: Logger, interval: Duration = .seconds(2)) {
        self.vault = vault
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        await PeriodicWorker("keyring reload", every: interval, logger: logger).run {
            do {
                if try vault.reload() {
                    logger.notice("keyring reloaded", metadata: ["current_version": "\(vault.currentKeyVersion)"])
                }
            } catch {
                logger.error("cannot reload the keyring; keeping the loaded one", metadata: ["reason": "\(error)"])
            }
            return 0
        }
    }
}
