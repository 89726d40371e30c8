import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import NIOCore
import Prometheus

/// `/healthz`, `/readyz`, `/metrics` and the OpenAPI document.
struct SystemRoutes {
    let runtime: MercatoRuntime
    let metrics: PrometheusCollectorRegistry?

    struct Health: ResponseEncodable {
        let status: String
        let checks: [String: String]?
    }

    func register(on router: Router<AppRequestContext>) {
        router.get("healthz") { _, _ in
            Health(status: "ok", checks: nil)
        }
        router.get("readyz") { _, _ -> Health in
            guard await runtime.isReady() else {
                throw APIError(status: 503, code: "not_ready", title: "Not ready",
                               detail: "Storage is unreachable or migrations are not current.")
            }
            // A disabled plugin degrades the node without taking it out of service: its other
            // commands and routes still answer, and the detail says which plugin and why.
            var checks = ["storage": "ok", "migrations": "current"]
            var degraded = false
            for plugin in runtime.plugins.status() {
                checks["plugin:\(plugin.id)"] = plugin.disabled ? "disabled: \(plugin.reason ?? "repeated failures")" : "ok"
                degraded = degraded || plugin.disabled
            }
            return Health(status: degraded ? "degraded" : "ready", checks: checks)
        }
        router.get("metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            metrics?.emit(into: &buffer)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        if runtime.settings.openAPIPublic { router.get("api/v1/openapi.json", use: Self.document) }
    }

    /// With `MERCATO_OPENAPI_PUBLIC=0` the document sits behind bearer authentication, where
    /// ``RouteScopes`` asks for `docs:read`.
    func registerProtected(on api: RouterGroup<AppRequestContext>) {
        if !runtime.settings.openAPIPublic { api.get("openapi.json", use: Self.document) }
    }

    @Sendable private static func document(_ request: Request, _ context: AppRequestContext) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes)))
    }
}

/// The OpenAPI 3.1 document (`docs/openapi.json`, bundled as a resource); the developer portal
/// renders its reference from these same bytes.
public enum OpenAPIDocument {
    public static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
              let data = try? Data(contentsOf: url) else { return Array("{}".utf8) }
        return Array(data)
    }()
}
