import Foundation
import Hummingbird
import MercatoCore
import MercatoHooks
import MercatoStorage

/// The developer API: register apps, add versions, publish, unlist, rotate secrets.
struct DeveloperAppRoutes {
    let registry: RegistryService

    /// Manifests are small; a larger body is a mistake.
    static let manifestLimit = 256 * 1024

    struct RotateBody: Decodable {
        let kind: String
    }

    struct RotatedBody: ResponseEncodable {
        let kind: String
        let secret: String
        let previousValidUntil: Date?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encode(secret, forKey: .secret)
            try c.encode(previousValidUntil, forKey: .previousValidUntil)
        }
        enum CodingKeys: String, CodingKey { case kind, secret, previousValidUntil }
    }

    struct StatusBody: ResponseEncodable {
        let key: String
        let status: String
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        api.post("developer/apps") { request, context in
            let caller = try context.requirePrincipal()
            let document = try await Self.manifestDocument(request, context: context)
            return EditedResponse(status: .created, response: RegisteredBody(try await registry.register(document, by: caller, requestID: context.requestID)))
        }
        api.get("developer/apps") { _, context in
            let caller = try context.requirePrincipal()
            return Page(data: try await registry.developerApps(by: caller).map(DeveloperAppBody.init), nextCursor: nil)
        }
        api.get("developer/apps/{key}") { _, context in
            let caller = try context.requirePrincipal()
            return DeveloperAppBody(try await registry.developerApp(key: try context.parameters.require("key"), by: caller))
        }
        api.put("developer/apps/{key}") { request, context in
            let caller = try context.requirePrincipal()
            let key = try context.parameters.require("key")
            _ = try await registry.developerApp(key: key, by: caller)   // 404 before reading another org's body
            let document = try await Self.manifestDocument(request, context: context)
            return RegisteredBody(try await registry.addVersion(key: key, document: document, by: caller, requestID: context.requestID))
        }
        api.post("developer/apps/{key}/publish") { _, context in
            let caller = try context.requirePrincipal()
            let app = try await registry.setStatus(key: try context.parameters.require("key"), to: "published", by: caller, requestID: context.requestID)
            return StatusBody(key: app.key, status: app.status)
        }
        api.post("developer/apps/{key}/unlist") { _, context in
            let caller = try context.requirePrincipal()
            let app = try await registry.setStatus(key: try context.parameters.require("key"), to: "unlisted", by: caller, requestID: context.requestID)
            return StatusBody(key: app.key, status: app.status)
        }
        api.post("developer/apps/{key}/secrets/rotate") { request, context in
            let caller = try context.requirePrincipal()
            let key = try context.parameters.require("key")
            _ = try await registry.developerApp(key: key, by: caller)
            let body = try await request.decodeJSON(RotateBody.self, context: context)
            guard let kind = RegistryService.SecretKind(rawValue: body.kind) else {
                throw APIError.invalidRequest("`kind` must be webhook or command.", errors: [.init(field: "kind", message: "must be webhook or command")])
            }
            let (secret, until) = try await registry.rotateSecret(key: key, kind: kind, by: caller, requestID: context.requestID)
            return RotatedBody(kind: kind.rawValue, secret: secret, previousValidUntil: until)
        }
    }

    /// The manifest in the body, as JSON or YAML by `Content-Type`.
    static func manifestDocument(_ request: Request, context: AppRequestContext) async throws -> JSONValue {
        guard let format = ManifestDocument.format(contentType: request.headers[.contentType]) else {
            throw APIError(status: 415, code: "unsupported_media_type", title: "Unsupported media type",
                           detail: "Send the manifest as `application/json` or `application/yaml`.")
        }
        let body = try await request.collectBody(context: context, limit: manifestLimit)
        return try ManifestDocument.parse(Data(body.readableBytesView), format: format)
    }
}
