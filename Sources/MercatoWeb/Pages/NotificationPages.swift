import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks

/// `/notifications`: the org's inbox, read and dismissed through the Notifications plugin's
/// routes, called as the API calls them (``PluginRouteCall``).
struct NotificationPages {
    let runtime: MercatoRuntime
    let kit: PageKit

    func register(on pages: RouterGroup<AppRequestContext>) {
        let calls = PluginRouteCall(runtime: runtime)
        pages.get("notifications") { request, context in
            let session = try kit.requireSession(context, request: request)
            guard let route = calls.route(.get, "notifications") else { throw APIError.notFound("Notifications") }
            let query = request.uri.queryParameters
            let status = ["unread", "dismissed", "all"].first { $0 == query["status"].map(String.init) } ?? "unread"
            var parameters = ["status": status, "limit": "25"]
            if let cursor = query["cursor"].map(String.init), !cursor.isEmpty { parameters["cursor"] = cursor }
            let answer = try await calls.call(plugin: route.plugin, route.definition, caller: session.principal, parameters: [:], query: parameters,
                                              body: nil, requestID: context.requestID, logger: context.logger)
            guard case .json(let value, _) = answer, let body = value.objectValue else { throw APIError.internalError() }
            let items: [[String: Any]] = (body["data"]?.arrayValue ?? []).compactMap { $0.objectValue }.map { n in
                var item: [String: Any] = [
                    "id": n["id"]?.stringValue ?? "", "title": n["title"]?.stringValue ?? "", "level": n["level"]?.stringValue ?? "info",
                    "app": n["app"]?.stringValue ?? "", "at": n["created_at"]?.stringValue ?? "",
                ]
                if let text = n["body"]?.stringValue { item["body"] = text }
                if let url = n["url"]?.stringValue, url.lowercased().hasPrefix("https://") || url.lowercased().hasPrefix("http://") { item["url"] = url }
                if n["dismissed_at"]?.stringValue == nil { item["canDismiss"] = true }
                return item
            }
            var model: [String: Any] = [
                "items": items, "empty": items.isEmpty, "status": status,
                "tabs": [("unread", "Unread"), ("dismissed", "Dismissed"), ("all", "All")].map { ["value": $0.0, "label": $0.1, "current": $0.0 == status] },
            ]
            if let next = body["next_cursor"]?.stringValue { model["nextURL"] = "/notifications?" + MarketplacePages.query(["status": status, "cursor": next]) }
            if query["done"] == "dismissed" { model["flash"] = ["kind": "ok", "text": "Notification dismissed."] }
            return kit.page("notifications", title: "Notifications", context: context, nav: "notifications", model)
        }

        pages.post("notifications/{id}/dismiss") { request, context in
            let session = try kit.requireSession(context, request: request)
            let id = try context.parameters.require("id")
            guard let route = calls.route(.post, "notifications/{id}/dismiss") else { throw APIError.notFound("Notifications") }
            _ = try await calls.call(plugin: route.plugin, route.definition, caller: session.principal, parameters: ["id": id], query: [:],
                                     body: nil, requestID: context.requestID, logger: context.logger)
            return kit.redirect("/notifications?done=dismissed")
        }
    }
}
