import Foundation
import MercatoCrypto
public import MercatoHooks
public import MercatoStorage

/// What the host offers plugins, over the core's services.
public struct HostPluginAPI: PluginAPI {
    let database: Database
    let installs: InstallService
    let tokens: TokenRefresher
    let clock: WallClock
    /// Gives an emitted event its deliveries in the transaction that writes it.
    let fanOut: FanOut

    public init(database: Database, installs: InstallService, tokens: TokenRefresher, clock: WallClock, fanOut: FanOut) {
        self.database = database
        self.installs = installs
        self.tokens = tokens
        self.clock = clock
        self.fanOut = fanOut
    }

    public func emit(_ event: EventDraft, for installID: String) async throws {
        let encoded = try Outbox.Encoded(event, at: clock.millis)
        let made = try await database.transaction { [fanOut] db in
            guard let install = try await InstallStore.live(id: installID, on: db) else { throw CommandError.notFound("Install \(installID) is gone.") }
            var reads = FanOut.Reads()
            return try await Outbox.writeRouted([(encoded, install)], by: fanOut, reads: &reads, on: db)
        }
        if made > 0 { Wakeup.senders.signal() }
    }

    public func config(of installID: String) async throws -> [String: JSONValue] {
        try await installs.configInClear(installID)
    }

    public func inboundSecret(of installID: String, provider: String) async throws -> InboundSecret? {
        try await installs.inboundSecret(installID, provider: provider).map(InboundSecret.init)
    }

    public func accessToken(of installID: String) async throws -> AccessToken {
        do {
            return try await tokens.accessToken(for: installID)
        } catch let error as TokenRefresher.TokenError {
            switch error {
            case .notConnected:
                throw CommandError(status: 409, code: "not_connected",
                                   message: "This install has no connected account; an org admin connects it from the install's page.")
            case .needsReconnect:
                throw CommandError(status: 409, code: "needs_reconnect",
                                   message: "The provider no longer accepts this install's grant; an org admin must connect the account again.")
            case .providerUnavailable(let seconds):
                throw CommandError(status: 503, code: "provider_unavailable",
                                   message: "The provider could not refresh the access token; retry in \(seconds) s.")
            }
        } catch is VaultError {
            throw CommandError(status: 500, code: "sealed_value_unreadable", message: "The stored token failed its integrity check; the operator has been told.")
        } catch let error as CommandError {
            throw error
        } catch {
            // Storage trouble is the host's, not the plugin's: a retry with the same webhook-id runs again.
            throw CommandError(status: 503, code: "storage_unavailable", message: "The token could not be read; retry with the same webhook-id.")
        }
    }
}
