import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// What the developer portal shows of an app's traffic: its outbound deliveries (filter by
/// status, pages, one delivery with every attempt, `Retry`, recover failed since a time)
/// through `DeliveryLogService`, and its command log across installs (filter by install,
/// outcome, command) through `CommandLogService`: the services the API's routes use.
struct DeveloperLogPages {
    let runtime: MercatoRuntime
    let kit: PageKit

    static let deliveriesPerPage = 20
    static let commandsPerPage = 25
    /// The query names each list keeps when the other one is filtered or paged.
    static let deliveryFilters = ["status"]
    static let commandFilters = ["install", "outcome", "command"]

    func register(on pages: RouterGroup<AppRequestContext>) {
        pages.get("developer/apps/{key}/deliveries/{msg_id}") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let id = try context.parameters.require("msg_id")
            let view = try await runtime.registry.developerApp(key: key, by: session.principal)
            let (delivery, attempts) = try await runtime.deliveryLog.get(appKey: key, id: id, by: session.principal)
            var model = Self.deliveryRow(delivery, path: MarketplacePages.pathSegment(key))
            model["appName"] = view.manifest.name
            model["url"] = delivery.url
            if let at = delivery.deliveredAt { model["delivered"] = MarketplacePages.time(at) }
            model["attempts"] = attempts.map { attempt -> [String: Any] in
                var row: [String: Any] = ["attempt": attempt.attempt, "at": MarketplacePages.time(attempt.createdAt),
                                          "duration": "\(attempt.durationMs) ms", "ok": (attempt.statusCode ?? 0) / 100 == 2]
                row["code"] = attempt.statusCode.map(String.init) ?? "—"
                if let error = attempt.error { row["error"] = error }
                if let body = attempt.responseBody, !body.isEmpty { row["body"] = body }
                return row
            }
            model["noAttempts"] = attempts.isEmpty
            if request.uri.queryParameters["done"] == "retried", let text = DeveloperPages.flashes["retried"] {
                model["flash"] = ["kind": "ok", "text": text]
            }
            return kit.page("developer-delivery", title: "Delivery \(id)", context: context, nav: "developer", model)
        }

        pages.post("developer/apps/{key}/deliveries/{msg_id}/retry") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let id = try context.parameters.require("msg_id")
            _ = try await runtime.deliveryLog.retry(appKey: key, id: id, by: session.principal)
            return kit.redirect("/developer/apps/\(MarketplacePages.pathSegment(key))/deliveries/\(MarketplacePages.pathSegment(id))?done=retried")
        }

        pages.post("developer/apps/{key}/recover") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            _ = try await runtime.registry.developerApp(key: key, by: session.principal)
            let form = try await FormData.posted(request)
            let text = (form["since"] ?? "").trimmingCharacters(in: .whitespaces)
            guard let since = Self.time(text) else {
                let pages = DeveloperPages(runtime: runtime, kit: kit)
                var model = try await pages.appModel(key: key, session: session, context: context, query: FormData(""), logs: self)
                model["recover"] = ["since": text, "error": text.isEmpty ? "Enter the date and time to recover from." : "is not a date and time (2026-12-01T09:30)"]
                model["flash"] = ["kind": "error", "text": "Nothing was recovered; see the problem below."]
                return kit.page("developer-app", title: model["name"] as? String ?? key, context: context, status: .unprocessableContent,
                                nav: "developer", model)
            }
            let (count, more) = try await runtime.deliveryLog.recover(appKey: key, since: since, by: session.principal)
            return kit.redirect("/developer/apps/\(MarketplacePages.pathSegment(key))?done=recovered&count=\(count)\(more ? "&more=1" : "")#deliveries")
        }
    }

    static func recoveredText(_ count: Int, more: Bool) -> String {
        let lead = count == 0 ? "No failed deliveries since then." : "\(count) failed deliver\(count == 1 ? "y is" : "ies are") queued again."
        return more ? lead + " There are more: recover again for the next ones." : lead
    }

    /// `2026-12-01T09:30` (what a `datetime-local` input sends, read as UTC), with seconds, or RFC 3339.
    static func time(_ text: String) -> Date? {
        guard !text.isEmpty else { return nil }
        if let date = try? RFC3339Field.parse(text, field: "since") { return date }
        for suffix in [":00Z", "Z"] {
            if let date = try? RFC3339Field.parse(text + suffix, field: "since") { return date }
        }
        return nil
    }

    /// The deliveries section: filter, one page, links to each delivery and the next page.
    func deliveriesModel(key: String, session: BrowserSession, query: FormData) async throws -> [String: Any] {
        let status = query["status"].flatMap { $0.isEmpty ? nil : $0 }
        let cursor = query["cursor"].flatMap { $0.isEmpty ? nil : $0 }
        let path = MarketplacePages.pathSegment(key)
        let (rows, next) = try await runtime.deliveryLog.list(appKey: key, by: session.principal, status: status, type: nil, since: nil,
                                                              cursor: cursor, limit: Self.deliveriesPerPage)
        var model: [String: Any] = [
            "rows": rows.map { Self.deliveryRow($0, path: path) }, "empty": rows.isEmpty,
            "statuses": Self.statusOptions(selected: status),
            "keep": Self.kept(query, Self.commandFilters + ["commands_cursor"]),
            "emptyText": status.map { "No \($0) deliveries\(cursor == nil ? "" : " on this page")." }
                ?? "No deliveries yet. Events your app subscribes to are sent here once an org installs it.",
        ]
        if let next {
            model["nextURL"] = "/developer/apps/\(path)?" + MarketplacePages.query(Self.values(query, Self.deliveryFilters + Self.commandFilters + ["commands_cursor"])
                .merging(["cursor": next]) { $1 }) + "#deliveries"
        }
        if cursor != nil { model["firstURL"] = "/developer/apps/\(path)?" + MarketplacePages.query(Self.values(query, Self.deliveryFilters + Self.commandFilters)) + "#deliveries" }
        return model
    }

    /// The command log section: filters, one page, the next page.
    func commandsModel(key: String, session: BrowserSession, query: FormData) async throws -> [String: Any] {
        func value(_ name: String) -> String? { query[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 } }
        let filter = CommandLogFilter(command: value("command"), outcome: value("outcome"), installId: value("install"))
        let cursor = value("commands_cursor")
        let (records, next) = try await runtime.commandLog.forApp(key, by: session.principal, filter: filter, cursor: cursor, limit: Self.commandsPerPage)
        let filtered = filter.command != nil || filter.outcome != nil || filter.installId != nil
        var model: [String: Any] = [
            "rows": records.map { record -> [String: Any] in
                ["at": MarketplacePages.time(record.createdAt), "install": record.installId, "command": record.command, "outcome": record.outcome,
                 "status": record.httpStatus, "ok": record.httpStatus < 300, "duration": Self.micros(record.durationUs), "webhookID": record.webhookId]
            },
            "empty": records.isEmpty,
            "install": filter.installId ?? "", "outcome": filter.outcome ?? "", "command": filter.command ?? "",
            "keep": Self.kept(query, Self.deliveryFilters + ["cursor"]),
            "emptyText": filtered ? "No commands match these filters." : "No commands yet. Signed commands from your app to its installs appear here.",
        ]
        let path = MarketplacePages.pathSegment(key)
        if let next {
            model["nextURL"] = "/developer/apps/\(path)?" + MarketplacePages.query(Self.values(query, Self.deliveryFilters + ["cursor"] + Self.commandFilters)
                .merging(["commands_cursor": next]) { $1 }) + "#commands"
        }
        if cursor != nil { model["firstURL"] = "/developer/apps/\(path)?" + MarketplacePages.query(Self.values(query, Self.deliveryFilters + ["cursor"] + Self.commandFilters)) + "#commands" }
        return model
    }

    static func statusOptions(selected: String?) -> [[String: Any]] {
        ["pending", "delivered", "failed"].map { name in
            let isSelected: Bool = name == (selected ?? "")
            return ["value": name, "selected": isSelected]
        }
    }

    static func deliveryRow(_ d: DeliveryRecord, path: String) -> [String: Any] {
        var row: [String: Any] = [
            "id": d.id, "type": d.type, "status": d.status, "attemptCount": d.attempts, "created": MarketplacePages.time(d.createdAt),
            "detailURL": "/developer/apps/\(path)/deliveries/\(MarketplacePages.pathSegment(d.id))", "path": path,
            "statusClass": d.status == "delivered" ? "ok" : d.status == "failed" ? "warn" : "pending",
        ]
        if let install = d.installId { row["install"] = install }
        if let code = d.lastStatusCode { row["lastCode"] = code }
        if let error = d.lastError { row["lastError"] = error }
        if d.status == "pending" { row["next"] = MarketplacePages.time(d.nextAttemptAt) }
        return row
    }

    static func micros(_ us: Int64) -> String {
        us < 10_000 ? String(format: "%.1f ms", Double(us) / 1000) : "\(us / 1000) ms"
    }

    /// The non-empty values of `names` in `query`.
    static func values(_ query: FormData, _ names: [String]) -> [String: String] {
        var kept: [String: String] = [:]
        for name in names { if let value = query[name], !value.isEmpty { kept[name] = value } }
        return kept
    }

    /// Hidden inputs that keep the other list's filters when one list's filter form is sent.
    static func kept(_ query: FormData, _ names: [String]) -> [[String: String]] {
        values(query, names).sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] }
    }
}
