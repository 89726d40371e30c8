import Foundation
public import MercatoHooks

/// Apps post notifications to their org's inbox (`notifications.create`); org members list and
/// dismiss them (`GET /api/v1/notifications`, `POST /api/v1/notifications/{id}/dismiss`).
///
/// A notification is kept in the namespace of the install that posted it, so an uninstall
/// drops it with the rest of that install's data; the inbox reads across the org's installs.
public struct NotificationsPlugin: MercatoPlugin {
    public init() {}

    static let levels: Set<String> = ["info", "success", "warning", "error"]
    static let prefix = "ntf/"

    public static let manifest = PluginManifest(
        id: "notifications",
        version: "1.0.0",
        scopes: [ScopeDefinition("notifications:write", summary: "Post notifications to the org's inbox.")],
        commands: [
            CommandDefinition("notifications.create", summary: "Post a notification to the org's inbox.", requiredScopes: ["notifications:write"], args: [
                ArgField("title", .string(maxLength: 200), required: true), ArgField("body", .string(maxLength: 4000)),
                ArgField("url", .string(maxLength: 2000)), ArgField("level", .string(maxLength: 10)),
            ]),
        ],
        routes: [
            RouteDefinition(.get, "notifications", minimumRole: .member, summary: "The org's inbox, newest first."),
            RouteDefinition(.post, "notifications/{id}/dismiss", minimumRole: .member, summary: "Dismiss a notification for the whole org."),
        ],
        // The inbox is read across the org's installs.
        orgWideReads: true
    )

    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        guard command.command == "notifications.create" else { throw CommandError.unknownCommand(command.command) }
        let title = command.args["title"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !title.isEmpty else { throw CommandError.invalidArgs(field: "args.title", "must not be empty") }
        let level = command.args["level"]?.stringValue ?? "info"
        guard Self.levels.contains(level) else { throw CommandError.invalidArgs(field: "args.level", "must be one of error, info, success, warning") }
        var notification: [String: JSONValue] = [
            "id": .string(PluginSupport.sortableID("ntf")), "title": .string(title), "level": .string(level),
            "app": .string(command.install.appKey), "install_id": .string(command.install.installID),
            "created_at": .string(PluginSupport.timestamp()), "dismissed_at": .null, "dismissed_by": .null,
        ]
        if let body = command.args["body"]?.stringValue { notification["body"] = .string(body) }
        if let url = command.args["url"]?.stringValue {
            // Links open in an admin's browser: only absolute http(s) URLs.
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "https" || scheme == "http", parsed.host != nil else {
                throw CommandError.invalidArgs(field: "args.url", "must be an absolute http or https URL")
            }
            notification["url"] = .string(url)
        }
        _ = try await context.storage.set(Self.prefix + (notification["id"]?.stringValue ?? ""), .object(notification))
        return .object(["id": notification["id"]!])
    }

    public func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {
        try await context.storage.deleteAll()
    }

    /// The host disabled one of the org's app endpoints, or one of the org's own webhook
    /// endpoints: tell the org in its inbox (kept in the org's own namespace; keyed by the
    /// activity, so a redelivery adds nothing).
    public func activityRecorded(_ activity: Activity, _ context: OrgContext) async throws {
        guard activity.action == "webhook.endpoint_disabled" else { return }
        let id = PluginSupport.sortableID("ntf", at: activity.occurredAt, suffix: activity.id.replacingOccurrences(of: "_", with: ""))
        let key = Self.prefix + id
        guard try await context.storage.own.get(key) == nil else { return }
        let reason = activity.details["reason"]?.stringValue ?? "it kept failing"
        let orgEndpoint = activity.details["receiver"]?.stringValue == "org_endpoint"
        let notification: JSONValue = [
            "id": .string(id), "title": .string("Webhook deliveries to \(activity.target) stopped"),
            "body": .string(orgEndpoint
                ? "Mercato disabled the org's webhook endpoint \(activity.target): \(reason). Fix the receiver, enable the endpoint again in Settings, Webhooks, and retry failed deliveries."
                : "Mercato disabled the app's webhook endpoint: \(reason). Fix the endpoint, publish a version, and recover failed deliveries."),
            "level": "error", "app": orgEndpoint ? .null : .string(activity.target), "install_id": .null,
            "created_at": .string(PluginSupport.timestamp(activity.occurredAt)), "dismissed_at": .null, "dismissed_by": .null,
        ]
        _ = try await context.storage.own.set(key, notification)
    }

    public func handleRoute(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse {
        switch (request.method, request.route) {
        case (.get, "notifications"):
            return try await list(request, context)
        case (.post, "notifications/{id}/dismiss"):
            let id = request.parameters["id"] ?? ""
            guard let entry = try await context.storage.find(Self.prefix + id), case .object(var notification) = entry.value.value else {
                throw CommandError.notFound("Notification \(id) was not found in this org.")
            }
            let storage = entry.installID.map { context.storage.install($0) } ?? context.storage.own
            if notification["dismissed_at"] == .null {   // dismissing twice keeps the first
                notification["dismissed_at"] = .string(PluginSupport.timestamp())
                notification["dismissed_by"] = .string(request.callerID)
                _ = try await storage.set(entry.key, .object(notification))
            }
            return .json(.object(notification))
        default:
            throw CommandError.notFound("No route `\(request.route)`.")
        }
    }

    /// `status` = `unread` (default), `dismissed` or `all`; `limit` 1-200 (50); `cursor`.
    private func list(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse {
        let status = request.query["status"] ?? "unread"
        guard ["unread", "dismissed", "all"].contains(status) else {
            throw CommandError.invalidRequest(field: "status", "must be unread, dismissed or all")
        }
        let limit = try PluginSupport.pageLimit(request.query["limit"])
        var after = request.query["cursor"].map { Self.prefix + $0 }
        var page: [JSONValue] = []
        var next: JSONValue = .null
        scan: while true {
            let entries = try await context.storage.entries(prefix: Self.prefix, after: after, limit: 200, newestFirst: true)
            for entry in entries {
                guard case .object(let n) = entry.value.value else { continue }
                let dismissed = n["dismissed_at"] != nil && n["dismissed_at"] != .null
                if status == "all" || (status == "dismissed") == dismissed { page.append(entry.value.value) }
                if page.count == limit { next = n["id"] ?? .null; break scan }
            }
            guard entries.count == 200, let last = entries.last else { break }
            after = last.key
        }
        return .json(.object(["data": .array(page), "next_cursor": next]))
    }
}
