import Foundation
public import MercatoHooks

/// The org's audit trail: every admin and lifecycle action the host records (installs, config
/// changes, tokens, app releases, ...) reaches this plugin through `activityRecorded` once it
/// committed, and is kept in the org's own namespace, so it outlives uninstalls. Admins read it
/// (`GET /api/v1/audit`); enterprise orgs export it as CSV (`GET /api/v1/audit/export`).
public struct AuditPlugin: MercatoPlugin {
    public init() {}

    static let prefix = "aud/"
    /// The most rows one export holds; narrow it with `since`/`until` for more.
    static let exportLimit = 100_000

    public static let manifest = PluginManifest(
        id: "audit",
        version: "1.0.0",
        routes: [
            RouteDefinition(.get, "audit", minimumRole: .admin, summary: "The org's audit trail, newest first."),
            RouteDefinition(.get, "audit/export", minimumRole: .admin, summary: "The audit trail as CSV (enterprise plan)."),
        ],
        // The trail is read across the org's namespaces.
        orgWideReads: true
    )

    public func activityRecorded(_ activity: Activity, _ context: OrgContext) async throws {
        // Keyed by the activity id: a redelivery writes the same entry again.
        let entry: JSONValue = .object([
            "id": .string(activity.id), "action": .string(activity.action), "actor": .string(activity.actor),
            "target": .string(activity.target), "request_id": activity.requestID.map(JSONValue.string) ?? .null,
            "details": activity.details, "occurred_at": .string(PluginSupport.timestamp(activity.occurredAt)),
        ])
        _ = try await context.storage.own.set(Self.prefix + activity.id, entry)
    }

    public func handleRoute(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse {
        switch request.route {
        case "audit":
            let filter = try Filter(request.query)
            let limit = try PluginSupport.pageLimit(request.query["limit"])
            let (rows, next) = try await scan(filter, after: request.query["cursor"].map { Self.prefix + $0 }, limit: limit, context)
            return .json(.object(["data": .array(rows.map { .object($0) }), "next_cursor": next.map(JSONValue.string) ?? .null]))
        case "audit/export":
            guard request.org.plan == "enterprise" else {
                throw CommandError.forbidden(code: "plan_required", "Exporting the audit trail needs the enterprise plan; this org is on \(request.org.plan).")
            }
            let filter = try Filter(request.query)
            let (rows, _) = try await scan(filter, after: nil, limit: Self.exportLimit, context)
            var csv = "id,occurred_at,actor,action,target,request_id,details\r\n"
            for row in rows {
                let details = (try? JSONEncoder.sorted.encode(row["details"] ?? .null)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                let cells = ["id", "occurred_at", "actor", "action", "target", "request_id"].map { row[$0]?.stringValue ?? "" } + [details]
                csv += cells.map(Self.csvCell).joined(separator: ",") + "\r\n"
            }
            return .file(Data(csv.utf8), contentType: "text/csv; charset=utf-8", filename: "audit-\(request.org.id).csv")
        default:
            throw CommandError.notFound("No route `\(request.route)`.")
        }
    }

    /// Newest first, past `after`, keeping rows that pass `filter`, at most `limit`.
    private func scan(_ filter: Filter, after: String?, limit: Int, _ context: OrgContext) async throws -> ([[String: JSONValue]], String?) {
        var rows: [[String: JSONValue]] = []
        var cursor = after
        while true {
            let entries = try await context.storage.entries(prefix: Self.prefix, after: cursor, limit: 500, newestFirst: true)
            for entry in entries where entry.installID == nil {
                guard case .object(let row) = entry.value.value else { continue }
                if filter.passes(row) { rows.append(row) }
                if rows.count == limit { return (rows, row["id"]?.stringValue) }
                if filter.isPast(row) { return (rows, nil) }
            }
            guard entries.count == 500, let last = entries.last else { return (rows, nil) }
            cursor = last.key
        }
    }

    /// Query filters: `action`, `actor`, `target` (exact), `since`/`until` (RFC 3339).
    struct Filter {
        var action, actor, target: String?
        var since, until: String?

        init(_ query: [String: String]) throws {
            action = query["action"]
            actor = query["actor"]
            target = query["target"]
            since = try query["since"].map { try Self.time($0, field: "since") }
            until = try query["until"].map { try Self.time($0, field: "until") }
        }

        func passes(_ row: [String: JSONValue]) -> Bool {
            let at = row["occurred_at"]?.stringValue ?? ""
            if let action, row["action"]?.stringValue != action { return false }
            if let actor, row["actor"]?.stringValue != actor { return false }
            if let target, row["target"]?.stringValue != target { return false }
            if let since, at < since { return false }
            if let until, at >= until { return false }
            return true
        }

        /// Newest first: once a row is older than `since`, every later row is too.
        func isPast(_ row: [String: JSONValue]) -> Bool {
            guard let since else { return false }
            return (row["occurred_at"]?.stringValue ?? "") < since
        }

        /// Normalised to the stored form, so that string order is time order.
        static func time(_ text: String, field: String) throws -> String {
            guard let date = try? Date(text, strategy: .iso8601) else {
                throw CommandError.invalidRequest(field: field, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z")
            }
            return PluginSupport.timestamp(date)
        }
    }

    /// A CSV cell (RFC 4180 quoting). Cells a spreadsheet would read as a formula get a
    /// leading apostrophe, so an exported trail cannot run anything when opened.
    static func csvCell(_ text: String) -> String {
        var cell = text
        if let first = cell.first, "=+-@\t\r".contains(first) { cell = "'" + cell }
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension JSONEncoder {
    static let sorted: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()
}
