public import MercatoHooks

/// Work items of the host SaaS that apps create and update.
public struct TasksPlugin: MercatoPlugin {
    public init() {}

    public static let manifest = PluginManifest(
        id: "tasks",
        version: "1.0.0",
        scopes: [
            ScopeDefinition("tasks:read", summary: "List the org's tasks created through this install."),
            ScopeDefinition("tasks:write", summary: "Create, update and complete tasks."),
        ],
        commands: [
            CommandDefinition("tasks.create", summary: "Create a task.", requiredScopes: ["tasks:write"]),
            CommandDefinition("tasks.update", summary: "Change a task's fields.", requiredScopes: ["tasks:write"]),
            CommandDefinition("tasks.complete", summary: "Mark a task done.", requiredScopes: ["tasks:write"]),
            CommandDefinition("tasks.list", summary: "List tasks.", requiredScopes: ["tasks:read"]),
        ],
        emits: ["task.created", "task.updated", "task.completed"]
    )
}
