import Foundation
import Hummingbird
import MercatoCore
import MercatoHooks
import MercatoStorage

/// The org's own webhook endpoints (CONTRACT §10): `GET|POST /webhooks`, `GET /webhooks/event_types`,
/// `GET|PATCH|DELETE /webhooks/{id}`, `POST .../secret/rotate`, `POST .../test`,
/// `GET .../deliveries[/{msg_id}]`, `POST .../deliveries/{msg_id}/retry`. Admin+ (the event
/// types: any member).
struct WebhookRoutes {
    let webhooks: OrgWebhookService

    struct CreateBody: Decodable {
        let url: String?
        let events: [String]?
        let description: String?
    }

    struct PatchBody: Decodable {
        let url: String?
        let events: [String]?
        let description: String?
        let status: String?
    }

    struct EndpointBody: ResponseEncodable {
        let id: String
        let url: String
        let events: [String]
        let description: String
        let status: String
        let disabledAt: Date?
        let disabledReason: String?
        let createdAt: Date
        let updatedAt: Date
        /// Only in the answer that created it.
        let secret: String?

        init(_ view: OrgWebhookService.View, secret: String? = nil) {
            id = view.endpoint.id
            url = view.endpoint.url
            events = view.events
            description = view.endpoint.description
            status = view.status
            disabledAt = view.disabledAt.map { Timestamp.date(millis: $0) }
            disabledReason = view.disabledReason
            createdAt = Timestamp.date(millis: view.endpoint.createdAt)
            updatedAt = Timestamp.date(millis: view.endpoint.updatedAt)
            self.secret = secret
        }
    }

    struct EventTypesBody: ResponseEncodable {
        let data: [String]
    }

    struct RotatedBody: ResponseEncodable {
        let secret: String
        let previousValidUntil: Date?
    }

    struct DeletedBody: ResponseEncodable {
        let id: String
        let deleted: Bool
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        api.get("webhooks/event_types") { _, context in
            EventTypesBody(data: try webhooks.eventTypes(by: try context.requirePrincipal()))
        }
        api.post("webhooks") { request, context in
            let caller = try context.requirePrincipal()
            _ = try caller.org(atLeast: .admin, to: "Managing webhook endpoints")   // 403 before reading the body
            let body = try await request.decodeJSON(CreateBody.self, context: context)
            let (view, secret) = try await webhooks.create(url: body.url, events: body.events, description: body.description, by: caller,
                                                           requestID: context.requestID)
            return EditedResponse(status: .created, response: EndpointBody(view, secret: secret))
        }
        api.get("webhooks") { request, context in
            let page = try Pagination(request)
            let (views, next) = try await webhooks.list(by: try context.requirePrincipal(), cursor: page.cursor, limit: page.limit)
            return Page(data: views.map { EndpointBody($0) }, nextCursor: next)
        }
        api.get("webhooks/{id}") { _, context in
            EndpointBody(try await webhooks.get(try context.parameters.require("id"), by: try context.requirePrincipal()))
        }
        api.patch("webhooks/{id}") { request, context in
            let caller = try context.requirePrincipal()
            let id = try context.parameters.require("id")
            _ = try await webhooks.get(id, by: caller)   // 404 before reading another org's body
            let body = try await request.decodeJSON(PatchBody.self, context: context)
            return EndpointBody(try await webhooks.update(id, url: body.url, events: body.events, description: body.description, status: body.status,
                                                          by: caller, requestID: context.requestID))
        }
        api.delete("webhooks/{id}") { _, context in
            let id = try context.parameters.require("id")
            try await webhooks.delete(id, by: try context.requirePrincipal(), requestID: context.requestID)
            return DeletedBody(id: id, deleted: true)
        }
        api.post("webhooks/{id}/secret/rotate") { _, context in
            let (secret, until) = try await webhooks.rotateSecret(try context.parameters.require("id"), by: try context.requirePrincipal(),
                                                                  requestID: context.requestID)
            return RotatedBody(secret: secret, previousValidUntil: until)
        }
        api.post("webhooks/{id}/test") { _, context in
            let delivery = try await webhooks.sendTest(try context.parameters.require("id"), by: try context.requirePrincipal())
            return EditedResponse(status: .accepted, response: DeliveryRoutes.DeliveryBody(delivery))
        }
        api.get("webhooks/{id}/deliveries") { request, context in
            let page = try Pagination(request)
            let query = request.uri.queryParameters
            let (rows, next) = try await webhooks.deliveries(
                try context.parameters.require("id"), by: try context.requirePrincipal(),
                status: query["status"].map(String.init), type: query["type"].map(String.init),
                since: try RFC3339Field.parse(query["since"].map(String.init), field: "since"), cursor: page.cursor, limit: page.limit)
            return Page(data: rows.map { DeliveryRoutes.DeliveryBody($0) }, nextCursor: next)
        }
        api.get("webhooks/{id}/deliveries/{msg_id}") { _, context in
            let (delivery, attempts) = try await webhooks.delivery(try context.parameters.require("id"), messageID: try context.parameters.require("msg_id"),
                                                                   by: try context.requirePrincipal())
            return DeliveryRoutes.DeliveryBody(delivery, attempts: attempts)
        }
        api.post("webhooks/{id}/deliveries/{msg_id}/retry") { _, context in
            DeliveryRoutes.DeliveryBody(try await webhooks.retry(try context.parameters.require("id"), messageID: try context.parameters.require("msg_id"),
                                                                 by: try context.requirePrincipal()))
        }
    }
}
