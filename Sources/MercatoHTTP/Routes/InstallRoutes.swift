import Foundation
import Hummingbird
import MercatoCore
import MercatoHooks
import MercatoStorage

/// The org admin's API for installs (CONTRACT §2).
struct InstallRoutes {
    let installs: InstallService
    /// The server's public URL, for the install's inbound receiving URLs (CONTRACT §11).
    let publicURL: String

    struct CreateBody: Decodable {
        let app: String
        let version: String?
        let config: [String: JSONValue]?
    }

    struct UpgradeBody: Decodable {
        let version: String
        let acceptScopes: [String]?
        let config: [String: JSONValue]?
    }

    struct InstallBody: ResponseEncodable, Sendable {
        let id: String
        let orgId: String
        let app: String
        let version: String
        let status: String
        let scopes: [String]
        let config: [String: JSONValue]
        let createdAt: Date
        let updatedAt: Date
        /// Where each inbound provider the app declares posts (CONTRACT §11); absent when none.
        let inbound: [InboundURL]?

        struct InboundURL: Encodable, Sendable {
            let provider: String
            let url: String
        }

        /// The answer as a JSON value: the same bytes `JSONCoding.encoder` writes for this body
        /// (snake_case keys, sorted; RFC 3339 times; `inbound` absent when nil), written by
        /// ``JSONValue``'s own writer for the install's read, the org admin's hottest GET.
        var json: JSONValue {
            var object: [String: JSONValue] = [
                "id": .string(id), "org_id": .string(orgId), "app": .string(app), "version": .string(version), "status": .string(status),
                "scopes": .array(scopes.map(JSONValue.string)), "config": .object(config),
                "created_at": .string(PluginSupport.timestamp(createdAt)), "updated_at": .string(PluginSupport.timestamp(updatedAt)),
            ]
            if let inbound {
                object["inbound"] = .array(inbound.map { .object(["provider": .string($0.provider), "url": .string($0.url)]) })
            }
            return .object(object)
        }

        /// ``json`` as a 200 answer, with the content type the encoder's answers carry.
        func response() throws -> Response {
            var headers = HTTPFields()
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try json.jsonBytes())))
        }

        init(_ view: InstallService.View, publicURL: String) {
            id = view.install.id
            orgId = view.install.orgId
            app = view.install.appKey
            version = view.install.version
            status = view.install.status.rawValue
            scopes = view.scopes
            config = view.config
            createdAt = Timestamp.date(millis: view.install.createdAt)
            updatedAt = Timestamp.date(millis: view.install.updatedAt)
            inbound = view.manifest.inbound.map { _ in
                InstallService.inboundURLs(of: view, publicURL: publicURL).map { InboundURL(provider: $0.provider, url: $0.url) }
            }
        }
    }

    struct RemovedBody: ResponseEncodable {
        let id: String
        let status: String
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        api.post("installs") { request, context in
            let actor = try Self.actor(context)
            let body = try await request.decodeJSON(CreateBody.self, context: context)
            let view = try await installs.install(appKey: body.app, version: body.version, config: body.config ?? [:], by: actor)
            return EditedResponse(status: .created, response: InstallBody(view, publicURL: publicURL))
        }
        api.get("installs") { request, context in
            let caller = try context.requirePrincipal()
            let page = try Pagination(request)
            let (views, next) = try await installs.list(by: caller, cursor: page.cursor, limit: page.limit)
            return Page(data: views.map { InstallBody($0, publicURL: publicURL) }, nextCursor: next)
        }
        api.get("installs/{id}") { _, context in
            try InstallBody(try await installs.get(try context.parameters.require("id"), by: try context.requirePrincipal()), publicURL: publicURL).response()
        }
        api.patch("installs/{id}/config") { request, context in
            let actor = try Self.actor(context)
            let id = try context.parameters.require("id")
            _ = try await installs.get(id, by: actor.principal)   // 404 before reading another org's body
            let patch = try await request.decodeJSON([String: JSONValue].self, context: context)
            return InstallBody(try await installs.patchConfig(id, patch: patch, by: actor), publicURL: publicURL)
        }
        api.post("installs/{id}/disable") { _, context in
            InstallBody(try await installs.setEnabled(try context.parameters.require("id"), false, by: try Self.actor(context)), publicURL: publicURL)
        }
        api.post("installs/{id}/enable") { _, context in
            InstallBody(try await installs.setEnabled(try context.parameters.require("id"), true, by: try Self.actor(context)), publicURL: publicURL)
        }
        api.post("installs/{id}/upgrade") { request, context in
            let actor = try Self.actor(context)
            let id = try context.parameters.require("id")
            _ = try await installs.get(id, by: actor.principal)
            let body = try await request.decodeJSON(UpgradeBody.self, context: context)
            return InstallBody(try await installs.upgrade(id, to: body.version, acceptScopes: body.acceptScopes ?? [], config: body.config ?? [:], by: actor), publicURL: publicURL)
        }
        api.delete("installs/{id}") { _, context in
            let id = try context.parameters.require("id")
            try await installs.uninstall(id, by: try Self.actor(context))
            return RemovedBody(id: id, status: InstallStatus.uninstalled.rawValue)
        }
    }

    static func actor(_ context: AppRequestContext) throws -> InstallService.Actor {
        InstallService.Actor(try context.requirePrincipal(), requestID: context.requestID)
    }
}
