import MercatoHooks

/// Named counters per install: `counters.increment` adds to one and answers its value; every
/// hundredth step emits `counter.milestone` to the apps that subscribe, and keeps the milestone
/// for the org's members to list (the route is in `CountersRoutes.swift`). Two increments of
/// one counter at the same instant may count once: storage has no compare-and-set.
struct CountersPlugin: MercatoPlugin {
    static let manifest = PluginManifest(
        id: "counters",
        version: "1.0.0",
        scopes: [ScopeDefinition("counters:write", summary: "Increment the install's counters.")],
        commands: [
            CommandDefinition("counters.increment", summary: "Add `by` (default 1) to a counter.", requiredScopes: ["counters:write"],
                              args: [ArgField("name", .string(maxLength: 64), required: true), ArgField("by", .number)]),
        ],
        emits: ["counter.milestone"],
        routes: [RouteDefinition(.get, "counters/milestones", minimumRole: .member, summary: "The org's counter milestones, newest first.")],
        // The milestones route reads across the org's installs.
        orgWideReads: true
    )

    func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        guard command.command == "counters.increment" else { throw CommandError.unknownCommand(command.command) }
        let name = command.args["name"]?.stringValue ?? ""
        let by = command.args["by"]?.numberValue ?? 1
        guard by >= 1, by <= 1000, by.rounded() == by else { throw CommandError.invalidArgs(field: "args.by", "must be a whole number from 1 to 1000") }
        let old = try await context.storage.get("counter/" + name)?.value.numberValue ?? 0
        let new = old + by
        _ = try await context.storage.set("counter/" + name, .number(new))
        if Int(new) / 100 > Int(old) / 100 {
            let milestone: JSONValue = ["name": .string(name), "value": .number(new)]
            // Sortable ids keep the keys unique across the org, so the route can page through them.
            _ = try await context.storage.set(PluginSupport.sortableID("milestone"), milestone)
            try await context.api.emit(EventDraft(type: "counter.milestone", data: milestone), for: command.install.installID)
        }
        return ["name": .string(name), "value": .number(new)]
    }

    /// Uninstalled: drop the install's counters and milestones.
    func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {
        try await context.storage.deleteAll()
    }
}
