import Foundation
public import MercatoHooks

/// Work items of the host SaaS that apps create, update and complete. Each change emits an
/// event (`task.created`, `task.updated`, `task.completed`) for the apps that subscribe.
public struct TasksPlugin: MercatoPlugin {
    public init() {}

    static let pageSize = 50

    public static let manifest = PluginManifest(
        id: "tasks",
        version: "1.0.0",
        scopes: [
            ScopeDefinition("tasks:read", summary: "List the tasks created through this install."),
            ScopeDefinition("tasks:write", summary: "Create, update and complete tasks."),
        ],
        commands: [
            CommandDefinition("tasks.create", summary: "Create a task.", requiredScopes: ["tasks:write"], args: [
                ArgField("title", .string(maxLength: 200), required: true), ArgField("description", .string(maxLength: 4000)),
                ArgField("due", .string(maxLength: 40)),
            ]),
            CommandDefinition("tasks.update", summary: "Change a task's title, description or due date.", requiredScopes: ["tasks:write"], args: [
                ArgField("id", .string(maxLength: 64), required: true), ArgField("title", .string(maxLength: 200)),
                ArgField("description", .string(maxLength: 4000)), ArgField("due", .string(maxLength: 40)),
            ]),
            CommandDefinition("tasks.complete", summary: "Mark a task done.", requiredScopes: ["tasks:write"],
                              args: [ArgField("id", .string(maxLength: 64), required: true)]),
            CommandDefinition("tasks.list", summary: "List tasks, oldest first, 50 a page.", requiredScopes: ["tasks:read"],
                              args: [ArgField("status", .string(maxLength: 10)), ArgField("cursor", .string(maxLength: 64))]),
        ],
        emits: ["task.created", "task.updated", "task.completed"]
    )

    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        let now = JSONValue.string(PluginSupport.timestamp())
        switch command.command {
        case "tasks.create":
            var task: [String: JSONValue] = ["id": .string(PluginSupport.sortableID("tsk")), "title": command.args["title"]!, "status": .string("open"),
                                             "created_at": now, "updated_at": now]
            try Self.applyOptional(command.args, to: &task)
            return try await save(task, event: "task.created", command, context)
        case "tasks.update":
            var task = try await load(command.args["id"]?.stringValue ?? "", context)
            if let title = command.args["title"], title != .null { task["title"] = title }
            try Self.applyOptional(command.args, to: &task)
            task["updated_at"] = now
            return try await save(task, event: "task.updated", command, context)
        case "tasks.complete":
            var task = try await load(command.args["id"]?.stringValue ?? "", context)
            if task["status"] == .string("done") { return .object(task) }     // completing twice changes nothing
            task["status"] = .string("done")
            task["completed_at"] = now
            task["updated_at"] = now
            return try await save(task, event: "task.completed", command, context)
        case "tasks.list":
            let status = command.args["status"]?.stringValue
            guard status == nil || status == "open" || status == "done" else {
                throw CommandError.invalidArgs(field: "args.status", "must be open or done")
            }
            var tasks: [JSONValue] = []
            var after = command.args["cursor"]?.stringValue.map { "task/" + $0 }
            var next: JSONValue = .null
            scan: while true {
                let keys = try await context.storage.keys(prefix: "task/", after: after, limit: 200)
                for key in keys {
                    guard let stored = try await context.storage.get(key), case .object(let task) = stored.value else { continue }
                    if status == nil || task["status"] == .string(status!) { tasks.append(stored.value) }
                    if tasks.count == Self.pageSize { next = task["id"] ?? .null; break scan }
                }
                guard keys.count == 200, let last = keys.last else { break }
                after = last
            }
            return .object(["tasks": .array(tasks), "next_cursor": next])
        default:
            throw CommandError.unknownCommand(command.command)
        }
    }

    public func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {
        try await context.storage.deleteAll()
    }

    // MARK: Helpers

    private func load(_ id: String, _ context: HookContext) async throws -> [String: JSONValue] {
        guard let stored = try await context.storage.get("task/" + id), case .object(let task) = stored.value else {
            throw CommandError.notFound("No task `\(id)` for this install.")
        }
        return task
    }

    private func save(_ task: [String: JSONValue], event: String, _ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        _ = try await context.storage.set("task/" + (task["id"]?.stringValue ?? ""), .object(task))
        try await context.api.emit(EventDraft(type: event, data: .object(["task": .object(task), "install_id": .string(command.install.installID)])),
                                   for: command.install.installID)
        return .object(task)
    }

    /// `description` and `due` when given; `due` must be an RFC 3339 date or time.
    static func applyOptional(_ args: [String: JSONValue], to task: inout [String: JSONValue]) throws {
        if let description = args["description"], description != .null { task["description"] = description }
        if let due = args["due"]?.stringValue {
            let asTime = try? Date(due, strategy: .iso8601)
            let asDate = try? Date(due, strategy: Date.ISO8601FormatStyle().year().month().day())
            guard asTime != nil || asDate != nil else {
                throw CommandError.invalidArgs(field: "args.due", "must be an RFC 3339 date or time, such as 2026-12-01")
            }
            task["due"] = .string(due)
        }
    }
}
