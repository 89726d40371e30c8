import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import NIOCore

/// `/audit` (admin+): the org's audit trail, newest first, filtered and paged; `/audit/export`
/// downloads it as CSV on the enterprise plan. Both go through the Audit plugin's routes, called
/// as `GET /api/v1/audit` and `GET /api/v1/audit/export` call them (``PluginRouteCall``), so the
/// role and plan rules are the API's.
struct AuditPages {
    let runtime: MercatoRuntime
    let kit: PageKit
    static let pageSize = 50
    /// The filters the page offers, as the API names them.
    static let filters = ["action", "actor", "target"]

    func register(on pages: RouterGroup<AppRequestContext>) {
        let calls = PluginRouteCall(runtime: runtime)
        pages.get("audit") { request, context in
            let session = try kit.requireSession(context, request: request)
            guard let route = calls.route(.get, "audit") else { throw APIError.notFound("Audit trail") }
            let filter = Self.filter(request)
            var query = filter
            query["limit"] = String(Self.pageSize)
            if let cursor = request.uri.queryParameters["cursor"].map(String.init), !cursor.isEmpty, cursor.utf8.count <= 100 { query["cursor"] = cursor }
            let answer = try await calls.call(plugin: route.plugin, route.definition, caller: session.principal, parameters: [:], query: query,
                                              body: nil, requestID: context.requestID, logger: context.logger)
            guard case .json(let value, _) = answer, let body = value.objectValue else { throw APIError.internalError() }
            let entries = (body["data"]?.arrayValue ?? []).compactMap { $0.objectValue }
            let names = try await runtime.people.memberNames(Set(entries.compactMap { $0["actor"]?.stringValue }), visibleTo: session.principal)
            let rows: [[String: Any]] = entries.map { row in
                var item: [String: Any] = [
                    "at": Self.shownTime(row["occurred_at"]?.stringValue ?? ""), "actor": row["actor"]?.stringValue ?? "",
                    "action": row["action"]?.stringValue ?? "", "target": row["target"]?.stringValue ?? "",
                ]
                if let actor = row["actor"]?.stringValue {
                    if let name = names[actor] { item["actorName"] = name } else if actor.hasPrefix("operator:") { item["actorName"] = "Operator" }
                }
                if let id = row["request_id"]?.stringValue { item["requestID"] = id }
                if let details = row["details"], details != .null, details != .object([:]) { item["details"] = Self.compact(details) }
                return item
            }
            var model: [String: Any] = [
                "rows": rows, "empty": rows.isEmpty, "filtered": !filter.isEmpty,
                "action": filter["action"] ?? "", "actor": filter["actor"] ?? "", "target": filter["target"] ?? "",
                "plan": session.plan.rawValue,
            ]
            if let next = body["next_cursor"]?.stringValue {
                model["nextURL"] = "/audit?" + MarketplacePages.query(filter.merging(["cursor": next]) { $1 })
            }
            if query["cursor"] != nil { model["firstURL"] = "/audit" + (filter.isEmpty ? "" : "?" + MarketplacePages.query(filter)) }
            if session.plan == .enterprise {
                model["exportURL"] = "/audit/export" + (filter.isEmpty ? "" : "?" + MarketplacePages.query(filter))
            }
            return kit.page("audit", title: "Audit trail", context: context, nav: "audit", model)
        }

        pages.get("audit/export") { request, context in
            let session = try kit.requireSession(context, request: request)
            guard let route = calls.route(.get, "audit/export") else { throw APIError.notFound("Audit trail") }
            let answer = try await calls.call(plugin: route.plugin, route.definition, caller: session.principal, parameters: [:],
                                              query: Self.filter(request), body: nil, requestID: context.requestID, logger: context.logger)
            guard case .file(let data, let contentType, let filename) = answer else { throw APIError.internalError() }
            var headers = HTTPFields()
            headers[.contentType] = contentType
            headers[.contentDisposition] = "attachment; filename=\"\(filename.filter { $0.isLetter || $0.isNumber || "._-".contains($0) })\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// The filters of the request that hold a value (each at most 200 characters).
    static func filter(_ request: Request) -> [String: String] {
        let query = request.uri.queryParameters
        var filter: [String: String] = [:]
        for name in filters {
            if let raw = query[name[...]], case let value = String(raw).trimmingCharacters(in: .whitespaces), !value.isEmpty, value.count <= 200 {
                filter[name] = value
            }
        }
        return filter
    }

    /// `2026-12-02T14:05:09.123Z` as `2026-12-02 14:05:09 UTC`.
    static func shownTime(_ stored: String) -> String {
        guard stored.count >= 19 else { return stored }
        return stored.prefix(10) + " " + stored.dropFirst(11).prefix(8) + " UTC"
    }

    /// Details as one line of JSON with sorted keys.
    static func compact(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
