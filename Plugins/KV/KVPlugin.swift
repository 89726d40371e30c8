public import MercatoHooks

/// Per-install key-value storage for apps, with the host's quota; dropped on uninstall.
public struct KVPlugin: MercatoPlugin {
    public init() {}

    /// Keys per `kv.list` page.
    static let pageSize = 100

    public static let manifest = PluginManifest(
        id: "kv",
        version: "1.0.0",
        scopes: [
            ScopeDefinition("kv:read", summary: "Read the install's key-value store."),
            ScopeDefinition("kv:write", summary: "Write and delete keys in the install's key-value store."),
        ],
        commands: [
            CommandDefinition("kv.get", summary: "Read one key.", requiredScopes: ["kv:read"],
                              args: [ArgField("key", .string(maxLength: 256), required: true)]),
            CommandDefinition("kv.list", summary: "List keys by prefix, 100 a page.", requiredScopes: ["kv:read"],
                              args: [ArgField("prefix", .string(maxLength: 256)), ArgField("cursor", .string(maxLength: 256))]),
            CommandDefinition("kv.set", summary: "Write one key (value ≤ 64 KiB of JSON).", requiredScopes: ["kv:write"],
                              args: [ArgField("key", .string(maxLength: 256), required: true), ArgField("value", .json(maxBytes: 64 * 1024), required: true)]),
            CommandDefinition("kv.delete", summary: "Delete one key.", requiredScopes: ["kv:write"],
                              args: [ArgField("key", .string(maxLength: 256), required: true)]),
        ]
    )

    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        let key = command.args["key"]?.stringValue ?? ""
        switch command.command {
        case "kv.get":
            guard let stored = try await context.storage.get(key) else { throw CommandError.notFound("No key `\(key)` in this install's store.") }
            return .object(["key": .string(key), "value": stored.value, "version": .number(Double(stored.version))])
        case "kv.set":
            let version = try await context.storage.set(key, command.args["value"] ?? .null)
            return .object(["key": .string(key), "version": .number(Double(version))])
        case "kv.delete":
            return .object(["deleted": .bool(try await context.storage.delete(key))])
        case "kv.list":
            let keys = try await context.storage.keys(prefix: command.args["prefix"]?.stringValue ?? "",
                                                      after: command.args["cursor"]?.stringValue, limit: Self.pageSize + 1)
            let page = Array(keys.prefix(Self.pageSize))
            return .object(["keys": .array(page.map(JSONValue.string)),
                            "next_cursor": keys.count > Self.pageSize ? .string(page.last!) : .null])
        default:
            throw CommandError.unknownCommand(command.command)
        }
    }

    /// The install is gone: so is its data.
    public func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {
        try await context.storage.deleteAll()
    }
}
