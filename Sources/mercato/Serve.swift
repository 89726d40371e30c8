import ArgumentParser
import Foundation
import Hummingbird
import Logging
import MercatoCore
import MercatoHTTP
import MercatoWeb
import MercatoStorage
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `mercato serve`: runs the server until SIGTERM or SIGINT, then drains and exits 0.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default command).")

    func run() async throws {
        // Swift concurrency's jobs run on NIO's event loops rather than on a pool of their own:
        // a request's task, its PostgreSQL round trips and its answer's write stay on one
        // thread instead of hopping between the two pools (a futex wake and a context switch
        // each way). Before anything else starts; blocking work (Argon2id) is offloaded. Why
        // not NIO's own takeover: see ``EventLoopConcurrency``.
        let takenOver = EventLoopConcurrency.install()
        let settings = Bootstrap.settings()
        let logger = Bootstrap.logging(settings: settings)
        if !takenOver { logger.notice("Swift concurrency keeps its own thread pool (NIO could not take it over)") }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        try await Server.build(settings: settings, metrics: registry, logger: logger).run()
        logger.notice("mercato stopped")
    }
}

/// The composition root of a server: every long-running part is a ServiceLifecycle service in
/// one group, which starts them in this order and, on SIGTERM or SIGINT, stops them in the
/// reverse order:
///
/// 1. storage (PostgreSQL's client; closes last, after everything that uses it)
/// 2. start-up (migrations, the first operator token, plugins' activation, the catalog import;
///    deactivates the plugins once everything behind it has stopped)
/// 3. the delivery HTTP clients (shut down after the delivery workers)
/// 4. the workers (keyring, hooks, delivery, token refresh, retention), once start-up is done
/// 5. the HTTP server, once start-up is done: first to stop, it drains in-flight requests
enum Server {
    static func build(settings: Settings, metrics: PrometheusCollectorRegistry, logger: Logger) async throws -> ServiceGroup {
        let vault = try KeyringSource(settings: settings).makeVault()
        let storage = try await Database.open(settings.database, logger: logger, asService: true, deadlines: settings.storageDeadlines)
        let runtime: MercatoRuntime
        do {
            runtime = try MercatoRuntime(settings: settings, database: storage, vault: vault, plugins: BuiltInPlugins.all, logger: logger)
        } catch {
            await storage.close()
            throw error
        }
        let startup = ServerStartup(runtime: runtime, logger: logger) { token in
            // Shown once, on standard output (unbuffered, so it is there even when stdout is a
            // file), never in a log line.
            FileHandle.standardOutput.write(Data("""

            ┌ Mercato operator token (shown once; store it now) ─────────────
            │ \(token)
            └ Use it as `Authorization: Bearer <token>` to create orgs.

            """.utf8))
        } announceFirstOwner: { link in
            FileHandle.standardOutput.write(Data("""

            ┌ Sign in to the marketplace: open this link (single use, 7 days) ─
            │ \(link)
            └ It makes you the owner of "My organisation".

            """.utf8))
        }
        let deliveryClients = DeliveryClients(grace: runtime.deliveryPolicy.timeout + .seconds(5))
        let pages = try WebPages(runtime: runtime, logger: logger)
        var app = buildApplication(runtime: runtime, metrics: metrics, logger: logger, pages: pages.register)
        app.beforeServerStarts {
            logger.notice("mercato listening", metadata: [
                "address": "\(settings.host):\(settings.port)", "storage": "\(storage.engine)", "public_url": "\(settings.publicURL)",
            ])
        }
        // Stopped in reverse: the HTTP server first, then the workers, the usage log's last rows, storage.
        let services: [any Service] = [storage, runtime.tokenUsage, startup, deliveryClients]
            + (runtime.workers(deliveryClients: deliveryClients) + [app]).map { AfterStartup($0, after: startup.ready) }
        return ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
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
