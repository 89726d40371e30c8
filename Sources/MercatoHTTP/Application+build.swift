public import Hummingbird
public import Logging
public import MercatoCore
public import Prometheus
public import ServiceLifecycle

/// Builds the router: system routes outside authentication, the management API behind bearer
/// tokens, all under one middleware that answers every error as Problem Details.
public func buildRouter(runtime: MercatoRuntime, metrics: PrometheusCollectorRegistry?, logger: Logger) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    let routes = RouteTable()
    router.add(middleware: RequestMiddleware(logger: logger, routes: routes))

    SystemRoutes(runtime: runtime, metrics: metrics).register(on: router)
    let commands = CommandRoutes(runtime: runtime)
    commands.registerGateway(on: router)
    let oauth = ConnectionRoutes(providers: runtime.providers, connections: runtime.connections)
    oauth.registerPublic(on: router)

    let api = router.group("api/v1").add(middleware: BearerAuthMiddleware(tenancy: runtime.tenancy))
    OrgRoutes(tenancy: runtime.tenancy).register(on: api)
    DeveloperAppRoutes(registry: runtime.registry).register(on: api)
    CatalogRoutes(registry: runtime.registry).register(on: api)
    InstallRoutes(installs: runtime.installs, connections: runtime.connections).register(on: api)
    oauth.register(on: api)
    commands.registerLogs(on: api)
    PluginRoutes(runtime: runtime).register(on: api)
    DeliveryRoutes(log: runtime.deliveryLog).register(on: api)

    routes.load(router.routes)
    return router
}

/// The HTTP application for `runtime`, listening where its settings say.
/// `services` run beside the server in the same ServiceLifecycle group (started with it,
/// stopped after it on SIGTERM).
public func buildApplication(
    runtime: MercatoRuntime, metrics: PrometheusCollectorRegistry?, logger: Logger, services: [any Service] = []
) -> some ApplicationProtocol {
    let router = buildRouter(runtime: runtime, metrics: metrics, logger: logger)
    return Application(
        router: router,
        configuration: .init(address: .hostname(runtime.settings.host, port: runtime.settings.port), serverName: "mercato"),
        services: services,
        logger: logger
    )
}
