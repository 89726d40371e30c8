public import Hummingbird
public import Logging
public import MercatoCore
public import Prometheus

/// Builds the router: system routes outside authentication, the management API behind bearer
/// tokens, all under one middleware that answers every error as Problem Details.
/// `pages`, when given, adds the browser pages (MercatoWeb) beside the API.
public func buildRouter(runtime: MercatoRuntime, metrics: PrometheusCollectorRegistry?, logger: Logger,
                        pages: (@Sendable (Router<AppRequestContext>) -> Void)? = nil) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    let routes = RouteTable()
    router.add(middleware: RequestMiddleware(logger: logger, routes: routes, usage: runtime.tokenUsage))

    let system = SystemRoutes(runtime: runtime, metrics: metrics)
    system.register(on: router)
    let commands = CommandRoutes(runtime: runtime)
    commands.registerGateway(on: router)
    let oauth = ConnectionRoutes(providers: runtime.providers, flow: runtime.connectFlow, pagesLanding: pages != nil)
    oauth.registerPublic(on: router)
    let pluginRoutes = PluginRoutes(runtime: runtime)
    pluginRoutes.registerPublic(on: router)

    let api = router.group("api/v1")
        .add(middleware: BearerAuthMiddleware(tenancy: runtime.tenancy, limits: runtime.tokenLimits))
        .add(middleware: IdempotencyMiddleware(idempotency: runtime.apiIdempotency, routes: routes))
    system.registerProtected(on: api)
    OrgRoutes(tenancy: runtime.tenancy).register(on: api)
    PeopleRoutes(tenancy: runtime.tenancy, people: runtime.people).register(on: api)
    DeveloperAppRoutes(registry: runtime.registry).register(on: api)
    CatalogRoutes(registry: runtime.registry).register(on: api)
    InstallRoutes(installs: runtime.installs, publicURL: runtime.settings.publicURL).register(on: api)
    oauth.register(on: api)
    commands.registerLogs(on: api)
    pluginRoutes.register(on: api)
    DeliveryRoutes(log: runtime.deliveryLog).register(on: api)
    WebhookRoutes(webhooks: runtime.orgWebhooks).register(on: api)
    pages?(router)

    routes.load(router.routes)
    return router
}

/// The HTTP application for `runtime`, listening where its settings say. It is one service of
/// the server's group (the composition root in `mercato serve` builds the group).
public func buildApplication(runtime: MercatoRuntime, metrics: PrometheusCollectorRegistry?, logger: Logger,
                             pages: (@Sendable (Router<AppRequestContext>) -> Void)? = nil) -> Application<RouterResponder<AppRequestContext>> {
    Application(
        router: buildRouter(runtime: runtime, metrics: metrics, logger: logger, pages: pages),
        configuration: .init(address: .hostname(runtime.settings.host, port: runtime.settings.port), serverName: "mercato"),
        logger: logger
    )
}
