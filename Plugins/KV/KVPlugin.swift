public import MercatoHooks

/// Per-install key-value storage with a quota.
public struct KVPlugin: MercatoPlugin {
    public init() {}

    public static let manifest = PluginManifest(
        id: "kv",
        version: "1.0.0",
        scopes: [
            ScopeDefinition("kv:read", summary: "Read the install's key-value store."),
            ScopeDefinition("kv:write", summary: "Write and delete keys in the install's key-value store."),
        ],
        commands: [
            CommandDefinition("kv.get", summary: "Read one key.", requiredScopes: ["kv:read"]),
            CommandDefinition("kv.list", summary: "List keys by prefix.", requiredScopes: ["kv:read"]),
            CommandDefinition("kv.set", summary: "Write one key (value ≤ 64 KiB).", requiredScopes: ["kv:write"]),
            CommandDefinition("kv.delete", summary: "Delete one key.", requiredScopes: ["kv:write"]),
        ]
    )
}
