import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import MercatoCore
import MercatoHTTP
import MercatoStorage
import Metrics
import Prometheus
import ServiceLifecycle

/// `mercato serve`: runs the server until SIGTERM or SIGINT, then drains and exits 0.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default command).")

    func run() async throws {
        let settings = Bootstrap.settings()
        let logger = Bootstrap.logging(settings: settings)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
        if let token = try await runtime.tenancy.bootstrapOperatorToken() {
            // Shown once, on standard output (unbuffered, so it is there even when stdout is a
            // file), never in a log line.
            FileHandle.standardOutput.write(Data("""

            ┌ Mercato operator token (shown once; store it now) ─────────────
            │ \(token)
            └ Use it as `Authorization: Bearer <token>` to create orgs.

            """.utf8))
        }
        await runtime.plugins.activate(runtime.pluginAPI)
        if let catalog = settings.catalogDirectory {
            await CatalogImporter(runtime: runtime).importAtStart(catalog, logger: logger)
        }
        let deliveryClients = DeliveryClients(grace: DeliveryPolicy(settings: settings).timeout + .seconds(5))
        let app = buildApplication(
            runtime: runtime, metrics: registry, logger: logger,
            services: [
                KeyringWatcher(vault: runtime.vault, logger: logger),
                runtime.hooks,
                DeliveryService(database: runtime.database, registry: runtime.registry, clients: deliveryClients, clock: runtime.clock, logger: logger,
                                policy: DeliveryPolicy(settings: settings), addressGuard: AddressGuard(allowPrivate: settings.allowPrivateWebhooks)),
                ConnectionRefresher(connections: runtime.connections, interval: .seconds(settings.oauthRefreshScanSeconds)),
                RetentionService(database: runtime.database, clock: runtime.clock, logger: logger,
                                 idempotencyHours: settings.idempotencyHours, commandLogDays: settings.commandLogDays,
                                 deliveryLogDays: settings.deliveryLogDays),
            ]
        )
        logger.notice("mercato listening", metadata: [
            "address": "\(settings.host):\(settings.port)",
            "storage": "\(runtime.database.engine)",
            "public_url": "\(settings.publicURL)",
        ])
        do {
            try await app.runService()
        } catch {
            try? await deliveryClients.shutdown()
            await runtime.plugins.deactivate()
            await runtime.close()
            throw error
        }
        // Plugins stop after the server drained and the services ended, bounded in all.
        try? await deliveryClients.shutdown()
        await runtime.plugins.deactivate()
        await runtime.close()
        logger.notice("mercato stopped")
    }
}

/// `mercato migrate`: applies pending migrations and exits.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations.")

    func run() async throws {
        let settings = Bootstrap.settings()
        let logger = Bootstrap.logging(settings: settings)
        let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger, migrate: false)
        let applied = try await Schema.runner.migrate(runtime.database, logger: logger)
        print(applied.isEmpty ? "migrations: already current" : "migrations: applied \(applied.map(String.init).joined(separator: ", "))")
        await runtime.close()
    }
}
