import Foundation
import HTTPTypes
import Hummingbird
public import Logging
public import MercatoCore
public import MercatoHooks
import MercatoStorage
import NIOCore

/// Mounts the routes plugins declare (behind bearer authentication, with the role each asks
/// for, scoped to the caller's org), and the operator's view of the plugins:
/// `GET /api/v1/plugins`, `POST /api/v1/plugins/{id}/enable`.
struct PluginRoutes {
    let runtime: MercatoRuntime

    struct PluginBody: ResponseEncodable {
        let id: String
        let version: String
        let status: String
        let disabledAt: Date?
        let reason: String?
        let recentFailures: Int

        init(_ s: PluginStatus) {
            id = s.id
            version = s.version
            status = s.disabled ? "disabled" : "active"
            disabledAt = s.disabledAt
            reason = s.reason
            recentFailures = s.recentFailures
        }
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        for (plugin, definition) in runtime.plugins.routes {
            let path = RouterPath(definition.path)
            let names = Self.parameterNames(definition.path)
            let handler: @Sendable (Request, AppRequestContext) async throws -> Response = { request, context in
                try await serve(plugin: plugin, definition, names: names, request, context)
            }
            switch definition.method {
            case .get: api.get(path, use: handler)
            case .post: api.post(path, use: handler)
            case .put: api.put(path, use: handler)
            case .delete: api.delete(path, use: handler)
            }
        }

        api.get("plugins") { _, context in
            try Self.requireOperator(context)
            return Page(data: runtime.plugins.status().map(PluginBody.init), nextCursor: nil)
        }
        api.post("plugins/{id}/enable") { _, context in
            try Self.requireOperator(context)
            let id = try context.parameters.require("id")
            guard runtime.plugins.enable(id) else { throw APIError.notFound("Plugin `\(id)`") }
            context.logger.notice("plugin enabled by the operator", metadata: ["plugin": "\(id)"])
            return PluginBody(runtime.plugins.status().first { $0.id == id }!)
        }
    }

    /// Each install's allowance on the plugins' public routes, across all nodes: by default 50 a
    /// second sustained, 200 at once (a provider's burst of retries);
    /// `MERCATO_INBOUND_PER_SECOND` and `MERCATO_INBOUND_BURST` change it.
    var publicLimit: RateLimiter.Limit {
        RateLimiter.Limit(perSecond: Double(runtime.settings.inboundPerSecond), burst: runtime.settings.inboundBurst)
    }

    /// The plugins' unauthenticated routes, outside bearer authentication: the install the path
    /// names must be active (else 404), within its rate allowance (else 429) and the body
    /// within ``PublicRouteDefinition/maxBodyBytes`` (else 413), before the plugin sees anything.
    func registerPublic(on router: Router<AppRequestContext>) {
        let limiter = RateAllowance(database: runtime.database)
        for (plugin, definition) in runtime.plugins.publicRoutes {
            let path = RouterPath("api/v1/" + definition.path)
            let names = Self.parameterNames(definition.path)
            let handler: @Sendable (Request, AppRequestContext) async throws -> Response = { request, context in
                try await servePublic(plugin: plugin, definition, names: names, limiter: limiter, request, context)
            }
            switch definition.method {
            case .get: router.get(path, use: handler)
            case .post: router.post(path, use: handler)
            case .put: router.put(path, use: handler)
            case .delete: router.delete(path, use: handler)
            }
        }
    }

    private func servePublic(plugin: String, _ definition: PublicRouteDefinition, names: [String], limiter: RateAllowance, _ request: Request,
                             _ context: AppRequestContext) async throws -> Response {
        var parameters: [String: String] = [:]
        for name in names { parameters[name] = context.parameters.get(name) }
        let installID = parameters[definition.installParameter] ?? ""
        let served = try await runtime.installs.servingActiveInstall(installID) { install in
            try await servePublic(plugin: plugin, definition, install: install, parameters: parameters, limiter: limiter, request, context)
        }
        guard let served else {
            // No token here: say only that there is no active install at this address.
            throw APIError(status: 404, code: "not_found", title: "Not found",
                           detail: "No active install `\(installID.prefix(64))` receives at this address.")
        }
        return served
    }

    private func servePublic(plugin: String, _ definition: PublicRouteDefinition, install: InstallInfo, parameters: [String: String],
                             limiter: RateAllowance, _ request: Request, _ context: AppRequestContext) async throws -> Response {
        let decision = try await limiter.take("inbound:" + install.installID, limit: publicLimit, now: Double(runtime.clock.millis) / 1000)
        guard decision.allowed else {
            throw APIError(status: 429, code: "rate_limited", title: "Too many requests",
                           detail: "This install receives too many requests; retry later.", headers: ["Retry-After": "\(max(1, decision.retryAfterSeconds))"])
        }
        let bytes = try await request.collectBody(context: context, limit: PublicRouteDefinition.maxBodyBytes)
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
        }
        let call = PublicRouteRequest(method: definition.method, route: definition.path, parameters: parameters, headers: headers,
                                      body: Array(bytes.readableBytesView), install: install, receivedAt: runtime.clock.now())
        guard let result = await runtime.plugins.publicRoute(call, plugin: plugin, requestID: context.requestID, logger: context.baseLogger, api: runtime.pluginAPI) else {
            throw APIError(status: 503, code: "plugin_disabled", title: "Plugin disabled",
                           detail: "The `\(plugin)` plugin that serves this route is disabled after repeated failures; retry later.",
                           headers: ["Retry-After": "60"])
        }
        switch result {
        case .success(.json(let value, let status)):
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            // The plugin's own JSON, written directly (the bytes JSONCoding.verbatim writes).
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try value.jsonBytes())))
        case .success(.file):
            throw APIError(status: 500, code: "handler_failed", title: "Handler failed", detail: "The route's plugin answered a file, which a public route cannot.")
        case .failure(.failed(let error)):
            throw APIError(status: error.status, code: error.code, title: Self.title(error.status), detail: error.message)
        case .failure(.crashed):
            throw APIError(status: 500, code: "handler_failed", title: "Handler failed", detail: "The route's plugin failed; it has been logged with the request id.")
        case .failure(.timedOut):
            throw APIError(status: 504, code: "handler_timeout", title: "Handler timeout", detail: "The route's plugin did not answer in time.")
        }
    }

    static func requireOperator(_ context: AppRequestContext) throws {
        guard try context.requirePrincipal().isOperator else { throw APIError.forbidden("Only the operator manages plugins.") }
    }

    private func serve(plugin: String, _ definition: RouteDefinition, names: [String], _ request: Request, _ context: AppRequestContext) async throws -> Response {
        let caller = try context.requirePrincipal()
        var parameters: [String: String] = [:]
        for name in names { parameters[name] = context.parameters.get(name) }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where query[String(key)] == nil { query[String(key)] = String(value) }
        // The role is checked before the body is read.
        _ = try caller.org(atLeast: definition.minimumRole, to: "`\(definition.method.rawValue) /api/v1/\(definition.path)`")
        var body: JSONValue?
        if definition.method == .post || definition.method == .put {
            let bytes = try await request.collectBody(context: context)
            if bytes.readableBytes > 0 { body = try JSONBody.decode(JSONValue.self, from: bytes, contentType: request.headers[.contentType]) }
        }
        let answer = try await PluginRouteCall(runtime: runtime).call(plugin: plugin, definition, caller: caller, parameters: parameters, query: query,
                                                                     body: body, requestID: context.requestID, logger: context.logger)
        switch answer {
        case .json(let value, let status):
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try value.jsonBytes())))
        case .file(let data, let contentType, let filename):
            var headers = HTTPFields()
            headers[.contentType] = contentType
            headers[.contentDisposition] = "attachment; filename=\"\(filename.filter { $0.isLetter || $0.isNumber || "._-".contains($0) })\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// The `{name}` parts of a route's path, in order (found once, when the route is registered).
    static func parameterNames(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? String(part.dropFirst().dropLast()) : nil
        }
    }

    public static func title(_ status: Int) -> String {
        switch status {
        case 400: "Bad request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not found"
        case 409: "Conflict"
        case 413: "Payload too large"
        case 422: "Invalid request"
        default: "Request failed"
        }
    }
}

/// One call of a plugin's route for a caller: the role the route asks for, the caller's org,
/// the plugin's answer or its failure as an ``APIError``. The API (``PluginRoutes``) and the
/// pages (MercatoWeb) both call plugin routes through this, so the rules are the same.
public struct PluginRouteCall: Sendable {
    let runtime: MercatoRuntime

    public init(runtime: MercatoRuntime) {
        self.runtime = runtime
    }

    /// The plugin that declares `method path`, with the route's definition.
    public func route(_ method: RouteDefinition.Method, _ path: String) -> (plugin: String, definition: RouteDefinition)? {
        runtime.plugins.routes.first { $0.definition.method == method && $0.definition.path == path }
    }

    public func call(plugin: String, _ definition: RouteDefinition, caller: Principal, parameters: [String: String], query: [String: String],
                     body: JSONValue?, requestID: String, logger: Logger) async throws -> RouteResponse {
        let orgID = try caller.org(atLeast: definition.minimumRole, to: "`\(definition.method.rawValue) /api/v1/\(definition.path)`")
        let org = try await runtime.tenancy.org(orgID, visibleTo: caller)
        guard case .member(_, let principalID, _, let callerRole) = caller else { throw APIError.forbidden("Only org members call this route.") }
        let call = RouteRequest(method: definition.method, route: definition.path, parameters: parameters, query: query, body: body,
                                org: OrgInfo(id: org.id, name: org.name, plan: org.plan), callerID: principalID,
                                callerRole: callerRole)
        guard let result = await runtime.plugins.route(call, plugin: plugin, requestID: requestID, logger: logger, api: runtime.pluginAPI) else {
            throw APIError(status: 503, code: "plugin_disabled", title: "Plugin disabled",
                           detail: "The `\(plugin)` plugin that serves this route is disabled after repeated failures; retry later.",
                           headers: ["Retry-After": "60"])
        }
        switch result {
        case .success(let answer):
            return answer
        case .failure(.failed(let error)):
            throw APIError(status: error.status, code: error.code, title: PluginRoutes.title(error.status), detail: error.message)
        case .failure(.crashed):
            throw APIError(status: 500, code: "handler_failed", title: "Handler failed", detail: "The route's plugin failed; it has been logged with the request id.")
        case .failure(.timedOut):
            throw APIError(status: 504, code: "handler_timeout", title: "Handler timeout", detail: "The route's plugin did not answer in time.")
        }
    }
}
