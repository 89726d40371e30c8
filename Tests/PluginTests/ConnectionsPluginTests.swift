import ConnectionsPlugin
import Foundation
import MercatoHooks
import MercatoHooksTesting
import Testing

@Suite struct ConnectionsPluginTests {
    let host = FakeHost()

    @Test func tokenComesFromTheHostWithExpiryAndScopes() async throws {
        let install = host.install(scopes: ["connections:token"])
        let expiry = Date(timeIntervalSince1970: 1_900_000_000.25)
        host.connect(install, token: AccessToken(token: "at-123", expiresAt: expiry, scopes: ["read:user", "repo"]))
        let answer = try await ConnectionsPlugin().handle(host.command("connections.token", [:], install), host.context(install))
        #expect(answer["access_token"] == .string("at-123"))
        #expect(answer["expires_at"] == .string("2030-03-17T17:46:40.250Z"))
        #expect(answer["scopes"] == .array([.string("read:user"), .string("repo")]))
        #expect(host.tokenRequests == 1)
    }

    @Test func aTokenWithoutLifetimeHasNullExpiry() async throws {
        let install = host.install(scopes: ["connections:token"])
        host.connect(install, token: AccessToken(token: "gh", expiresAt: nil, scopes: []))
        let answer = try await ConnectionsPlugin().handle(host.command("connections.token", [:], install), host.context(install))
        #expect(answer["expires_at"] == .null)
    }

    @Test func theHostsRefusalReachesTheSender() async throws {
        let install = host.install(scopes: ["connections:token"])
        await #expect(throws: CommandError(status: 409, code: "not_connected", message: "Install \(install.installID) has no connected account.")) {
            try await ConnectionsPlugin().handle(host.command("connections.token", [:], install), host.context(install))
        }
        let broken = CommandError(status: 409, code: "needs_reconnect", message: "The provider refused the stored grant.")
        host.connectionFails(install, with: broken)
        await #expect(throws: broken) {
            try await ConnectionsPlugin().handle(host.command("connections.token", [:], install), host.context(install))
        }
    }

    @Test func theAnswerIsMarkedSecret() {
        #expect(ConnectionsPlugin.manifest.commands.allSatisfy { $0.answerHoldsSecrets })
    }
}
