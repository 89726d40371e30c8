import Foundation
import Hummingbird
import MercatoHTTP
import MercatoStorage
import MercatoTestSupport
import Testing

@Suite("The OpenAPI document matches the routes")
struct OpenAPITests {
    /// `METHOD /path/{param}` for every route, parameters normalised.
    static func normalise(_ method: String, _ path: String) -> String {
        let segments = path.split(separator: "/").map { s -> String in
            s.hasPrefix(":") || s.hasPrefix("{") ? "{}" : String(s)
        }
        return method.uppercased() + " /" + segments.joined(separator: "/")
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        try await withApp(.sqlite) { app async throws in
            let answer = try await app.call(.get, "/api/v1/openapi.json")
            #expect(answer.status == .ok)
            let doc = answer.json
            #expect((doc["openapi"] as? String)?.hasPrefix("3.1") == true)
            let paths = try #require(doc["paths"] as? [String: [String: Any]])
            var documented = Set<String>()
            for (path, item) in paths {
                for method in item.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                    documented.insert(Self.normalise(method, path))
                }
            }
            let router = buildRouter(runtime: app.runtime, metrics: nil, logger: app.logs.logger())
            let served = Set(router.routes.map { Self.normalise($0.method.rawValue, $0.path.description) })
            #expect(served == documented, "only served: \(served.subtracting(documented)); only documented: \(documented.subtracting(served))")
        }
    }
}
