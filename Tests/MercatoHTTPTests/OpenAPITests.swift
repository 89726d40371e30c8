import Foundation
import Hummingbird
import MercatoCore
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

    /// Every event type the code can emit (the host's and the built-in plugins', as the
    /// executable registers them) has an entry in the document's `webhooks`, with the
    /// `{type, timestamp, data}` envelope and the Standard Webhooks headers.
    @Test func everyEventTypeIsDocumentedAsAWebhook() throws {
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
        let webhooks = try #require(doc["webhooks"] as? [String: [String: Any]])
        let emitted = try TestPlugins.capabilities().eventTypes
        #expect(emitted.contains("task.created") && emitted.contains("inbound.received"), "the plugins' types are counted")
        let missing = emitted.subtracting(webhooks.keys)
        #expect(missing.isEmpty, "undocumented event types: \(missing.sorted())")
        #expect(webhooks["webhook.test"] != nil, "CONTRACT §10's test event")
        for (type, item) in webhooks {
            let post = try #require(item["post"] as? [String: Any], "\(type) has no post")
            let headers = (post["parameters"] as? [[String: String]] ?? []).compactMap { $0["$ref"] }
            #expect(headers.count == 3 && headers.allSatisfy { $0.hasPrefix("#/components/parameters/Webhook") }, "\(type): \(headers)")
            let body = try #require(((post["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any])
            let schema = try #require(body["schema"] as? [String: Any])
            #expect(schema["required"] as? [String] == ["type", "timestamp", "data"], "\(type)")
            #expect(((schema["properties"] as? [String: Any])?["type"] as? [String: Any])?["const"] as? String == type)
            #expect((body["example"] as? [String: Any])?["type"] as? String == type, "\(type) has an example of itself")
        }
    }
}
