import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// `/settings/webhooks` (admin+, CONTRACT §8 and §10): the org's own webhook endpoints: list,
/// create (the secret shown once), rotate, test, enable or disable, delete (after a
/// confirmation), and each endpoint's deliveries with their attempts and `Retry`. Through
/// `OrgWebhookService`, as the API.
struct WebhookPages {
    let runtime: MercatoRuntime
    let kit: PageKit

    static let notices = [
        "deleted": "The endpoint is deleted.", "test": "A webhook.test event is queued for this endpoint.",
        "retry": "The delivery is queued again with the same webhook-id.", "disabled": "The endpoint is disabled: nothing is sent to it.",
        "active": "The endpoint is enabled again.",
    ]

    func register(on pages: RouterGroup<AppRequestContext>) {
        pages.get("settings/webhooks") { request, context in
            let session = try kit.requireSession(context, request: request)
            var model = try await listModel(session, form: nil)
            flash(request, into: &model)
            return kit.page("webhooks", title: "Webhooks", context: context, nav: "webhooks", model)
        }

        pages.post("settings/webhooks") { request, context in
            let session = try kit.requireSession(context, request: request)
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            let url = (form["url"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let events = form.values["events"] ?? []
            let description = (form["description"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            do {
                let (view, secret) = try await runtime.orgWebhooks.create(url: url, events: events, description: description,
                                                                        by: session.principal, requestID: context.requestID)
                return kit.page("developer-secrets", title: "New webhook endpoint", context: context, nav: "webhooks", [
                    "heading": "Webhook endpoint \(view.endpoint.url)", "continueURL": "/settings/webhooks/\(view.endpoint.id)",
                    "continueText": "Continue to the endpoint",
                    "secrets": [["kind": "Signing", "value": secret, "id": "secret-webhook"]],
                    "warning": "Copy the signing secret now: it is shown on this page only and cannot be read again. Your receiver verifies every delivery with it.",
                ])
            } catch let error as APIError where error.status == 422 {
                var model = try await listModel(session, form: (url, events, description))
                for problem in error.errors {
                    let field = problem.field.hasPrefix("events") ? "events" : problem.field
                    let key = field + "Error"
                    model[key] = ((model[key] as? String).map { $0 + " " } ?? "") + Self.sentence(field: problem.field, problem.message)
                }
                return kit.page("webhooks", title: "Webhooks", context: context, status: .unprocessableContent, nav: "webhooks", model)
            }
        }

        pages.get("settings/webhooks/{id}") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            let view = try await runtime.orgWebhooks.get(id, by: session.principal)
            let status = request.uri.queryParameters["status"].map(String.init).flatMap { ["pending", "delivered", "failed"].contains($0) ? $0 : nil }
            let cursor = request.uri.queryParameters["cursor"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let (rows, next) = try await runtime.orgWebhooks.deliveries(id, by: session.principal, status: status, type: nil, since: nil,
                                                                        cursor: cursor, limit: 50)
            var model = endpointModel(view)
            model["deliveries"] = rows.map { delivery in
                var row = deliveryRow(delivery)
                row["endpoint"] = id
                return row
            }
            model["noDeliveries"] = rows.isEmpty
            model["statuses"] = [["value": "", "label": "All", "selected": status == nil]]
                + ["pending", "delivered", "failed"].map { ["value": $0, "label": $0.capitalized, "selected": $0 == status] }
            if let next { model["nextURL"] = "/settings/webhooks/\(id)?cursor=\(next)" + (status.map { "&status=\($0)" } ?? "") }
            flash(request, into: &model)
            return kit.page("webhook", title: "Webhook endpoint", context: context, nav: "webhooks", model)
        }

        pages.get("settings/webhooks/{id}/deliveries/{msg_id}") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            let (delivery, attempts) = try await runtime.orgWebhooks.delivery(id, messageID: try context.parameters.require("msg_id"), by: session.principal)
            var model = deliveryRow(delivery)
            model["endpoint"] = id
            model["attempts"] = attempts.map { a -> [String: Any] in
                var row: [String: Any] = ["attempt": a.attempt, "duration": "\(a.durationMs) ms", "at": MarketplacePages.time(a.createdAt)]
                if let code = a.statusCode { row["code"] = code }
                if let error = a.error { row["error"] = error }
                if let body = a.responseBody { row["body"] = body }
                return row
            }
            model["noAttempts"] = attempts.isEmpty
            return kit.page("webhook-delivery", title: "Delivery \(delivery.id)", context: context, nav: "webhooks", model)
        }

        pages.post("settings/webhooks/{id}/deliveries/{msg_id}/retry") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            _ = try await runtime.orgWebhooks.retry(id, messageID: try context.parameters.require("msg_id"), by: session.principal)
            return kit.redirect("/settings/webhooks/\(id)?done=retry")
        }

        pages.post("settings/webhooks/{id}/rotate") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            let (secret, until) = try await runtime.orgWebhooks.rotateSecret(id, by: session.principal, requestID: context.requestID)
            var model: [String: Any] = [
                "heading": "New signing secret", "continueURL": "/settings/webhooks/\(id)", "continueText": "Back to the endpoint",
                "secrets": [["kind": "Signing", "value": secret, "id": "secret-webhook"]],
                "warning": "Copy the new signing secret now: it is shown on this page only and cannot be read again.",
            ]
            if let until {
                model["overlap"] = "The previous secret keeps signing until \(MarketplacePages.time(Int64(until.timeIntervalSince1970 * 1000))): "
                    + "until then every delivery carries both signatures, so update your receiver before that."
            }
            return kit.page("developer-secrets", title: "New signing secret", context: context, nav: "webhooks", model)
        }

        pages.post("settings/webhooks/{id}/test") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            _ = try await runtime.orgWebhooks.sendTest(id, by: session.principal)
            return kit.redirect("/settings/webhooks/\(id)?done=test")
        }

        pages.post("settings/webhooks/{id}/status") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            let status = form["status"] == "disabled" ? "disabled" : "active"
            _ = try await runtime.orgWebhooks.update(id, url: nil, events: nil, description: nil, status: status, by: session.principal,
                                                     requestID: context.requestID)
            return kit.redirect("/settings/webhooks/\(id)?done=\(status)")
        }

        pages.get("settings/webhooks/{id}/delete") { request, context in
            let session = try kit.requireSession(context, request: request)
            let view = try await runtime.orgWebhooks.get(try context.parameters.require("id"), by: session.principal)
            return kit.page("webhook-delete", title: "Delete the endpoint?", context: context, nav: "webhooks", endpointModel(view))
        }

        pages.post("settings/webhooks/{id}/delete") { request, context in
            let session = try kit.requireSession(context, request: request)
            try await runtime.orgWebhooks.delete(try context.parameters.require("id"), by: session.principal, requestID: context.requestID)
            return kit.redirect("/settings/webhooks?done=deleted")
        }
    }

    private func flash(_ request: Request, into model: inout [String: Any]) {
        if let done = request.uri.queryParameters["done"].map(String.init), let text = Self.notices[done] {
            model["flash"] = ["kind": "ok", "text": text]
        }
    }

    /// The list and the create form (with what was typed, after a refusal).
    private func listModel(_ session: BrowserSession, form: (url: String, events: [String], description: String)?) async throws -> [String: Any] {
        let (views, _) = try await runtime.orgWebhooks.list(by: session.principal, cursor: nil, limit: 200)
        let types = try runtime.orgWebhooks.eventTypes(by: session.principal)
        let chosen = Set(form?.events ?? [])
        var options: [[String: Any]] = [["value": "*", "label": "All events (*)", "id": "event-all", "checked": chosen.contains("*")]]
        options += types.map { ["value": $0, "label": $0, "id": "event-" + $0.replacingOccurrences(of: ".", with: "-"), "checked": chosen.contains($0)] }
        return ["endpoints": views.map(endpointModel), "empty": views.isEmpty, "eventOptions": options,
                "url": form?.url ?? "", "description": form?.description ?? ""]
    }

    private func endpointModel(_ view: OrgWebhookService.View) -> [String: Any] {
        var model: [String: Any] = [
            "id": view.endpoint.id, "url": view.endpoint.url, "events": view.events.joined(separator: ", "),
            "description": view.endpoint.description, "status": view.status, "created": MarketplacePages.time(view.endpoint.createdAt),
        ]
        if view.status == "active" { model["active"] = true } else { model["disabled"] = true }
        if let reason = view.disabledReason { model["disabledReason"] = reason }
        return model
    }

    private func deliveryRow(_ d: DeliveryRecord) -> [String: Any] {
        var row: [String: Any] = ["id": d.id, "type": d.type, "status": d.status, "attempts": d.attempts, "created": MarketplacePages.time(d.createdAt)]
        if let code = d.lastStatusCode { row["lastCode"] = code }
        if let error = d.lastError { row["lastError"] = error }
        if d.status == "pending" { row["next"] = MarketplacePages.time(d.nextAttemptAt) }
        return row
    }

    /// A field problem as a sentence for the form.
    static func sentence(field: String, _ message: String) -> String {
        switch field {
        case "url": "The URL \(message)."
        case "description": "The description \(message)."
        case "events": "Choose at least one event."
        default: message.replacingOccurrences(of: " (see GET /api/v1/webhooks/event_types)", with: "") + "."
        }
    }
}
