public import Foundation
public import Logging
public import MercatoHooks
public import MercatoStorage

/// ``PluginStorage`` over `plugin_kv`, bound by the host to one plugin and one namespace (an
/// install, or an org's own), with a byte quota per (plugin, namespace).
public struct HostPluginStorage: PluginStorage {
    let database: Database
    let plugin: String
    /// The namespace: an install id, or the org id for the org's own namespace.
    let install: String
    let org: String
    /// Whether keys are written with their org, for the plugin's reads across an org
    /// (``PluginManifest/orgWideReads``).
    let indexedByOrg: Bool
    let quotaBytes: Int
    let clock: WallClock
    /// Group commit of plugin writes, shared by every namespace (see ``PluginWrites``).
    let writes: PluginWrites

    /// The default quota: 10 MiB per plugin per install (``PluginManifest/installStorageBytes``
    /// declares another).
    public static let defaultQuota = 10 * 1024 * 1024
    /// The quota of an org's own namespace (audit trails and the like): 256 MiB per plugin.
    public static let orgQuota = 256 * 1024 * 1024

    public init(database: Database, plugin: String, install: String, org: String, indexedByOrg: Bool = false, quotaBytes: Int = defaultQuota,
                clock: WallClock, writes: PluginWrites? = nil) {
        self.database = database
        self.plugin = plugin
        self.install = install
        self.org = org
        self.indexedByOrg = indexedByOrg
        self.quotaBytes = quotaBytes
        self.clock = clock
        self.writes = writes ?? PluginWrites(database: database, clock: clock)
    }

    public func get(_ key: String) async throws -> StoredValue? {
        guard let row = try await database.read({ try await PluginDataStore.get(plugin: plugin, install: install, key: key, now: clock.millis, on: $0) }) else { return nil }
        return StoredValue(value: try JSONValue(parsing: row.value), version: row.version)
    }

    public func set(_ key: String, _ value: JSONValue, expiresAt: Date?) async throws -> Int {
        let text = try JSONCoding.text(value)
        let expiry = expiresAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.up)) }
        switch try await writes.submit(PluginWrite(.put(plugin: plugin, install: install, org: indexedByOrg ? org : nil, key: key, value: text,
                                                        quota: quotaBytes, at: clock.millis, expiresAt: expiry))).result {
        case .stored(let version): return version
        case .overQuota: throw overQuota
        case .deleted, .present: throw StorageError("a key-value write was answered as a delete")
        }
    }

    public func create(_ key: String, _ value: JSONValue, expiresAt: Date?, emitting events: [EventDraft]) async throws -> Bool {
        if !events.isEmpty && install == org {
            throw CommandError(status: 400, code: "invalid_request", message: "Events are emitted for an install; an org's own storage has none.")
        }
        let text = try JSONCoding.text(value)
        let expiry = expiresAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.up)) }
        let at = clock.millis
        // Encoded here, not in the batch: the batch holds SQLite's one writer.
        let encoded = try events.map { try Outbox.Encoded($0, at: at) }
        let outcome = try await writes.submit(PluginWrite(.put(plugin: plugin, install: install, org: indexedByOrg ? org : nil, key: key, value: text,
                                                               quota: quotaBytes, at: at, expiresAt: expiry, onlyIfAbsent: true), events: encoded))
        switch outcome.result {
        case .stored:
            // Its events' deliveries committed with it: the senders look now. Only when there
            // are some: each sender's look is a claim in the writer's transaction, and an event
            // no app subscribes to (an install's provider webhooks, mostly) would wake them
            // all for nothing, once per event.
            if outcome.madeDeliveries { Wakeup.senders.signal() }
            return true
        case .present: return false
        case .overQuota: throw overQuota
        case .deleted: throw StorageError("a key-value write was answered as a delete")
        }
    }

    private var overQuota: CommandError {
        CommandError(status: 413, code: "quota_exceeded", message: "This install's storage is full (\(quotaBytes / 1024) KiB); delete keys first.")
    }

    public func delete(_ key: String) async throws -> Bool {
        try await writes.submit(PluginWrite(.delete(plugin: plugin, install: install, key: key))).result == .deleted(existed: true)
    }

    public func keys(prefix: String, after: String?, limit: Int) async throws -> [String] {
        try await database.read { try await PluginDataStore.keys(plugin: plugin, install: install, prefix: prefix, after: after ?? "", limit: limit, now: clock.millis, on: $0) }
    }

    public func deleteAll() async throws {
        try await database.transaction { _ = try await PluginDataStore.deleteAll(plugin: plugin, install: install, on: $0) }
    }
}

/// ``OrgStorage`` over `plugin_kv`: one plugin's namespaces across one org. Reads across the
/// org need the plugin's keys indexed by org (`orgWideReads`, ``PluginManifest/orgWideReads``).
public struct HostOrgStorage: OrgStorage {
    let database: Database
    let plugin: String
    let org: String
    let orgWideReads: Bool
    /// The quota of each install's namespace reached through ``install(_:)``.
    let installQuota: Int
    let clock: WallClock
    let writes: PluginWrites

    public init(database: Database, plugin: String, org: String, orgWideReads: Bool, installQuota: Int = HostPluginStorage.defaultQuota,
                clock: WallClock, writes: PluginWrites? = nil) {
        self.database = database
        self.plugin = plugin
        self.org = org
        self.orgWideReads = orgWideReads
        self.installQuota = installQuota
        self.clock = clock
        self.writes = writes ?? PluginWrites(database: database, clock: clock)
    }

    public func entries(prefix: String, after: String?, limit: Int, newestFirst: Bool) async throws -> [StoredEntry] {
        guard orgWideReads else { throw OrgWideReadsNotDeclared(plugin: plugin) }
        return try await database.read { db in
            try await PluginDataStore.orgEntries(plugin: plugin, org: org, prefix: prefix, after: after, limit: limit, descending: newestFirst, now: clock.millis, on: db)
        }.map(entry)
    }

    public func find(_ key: String) async throws -> StoredEntry? {
        guard orgWideReads else { throw OrgWideReadsNotDeclared(plugin: plugin) }
        return try await database.read { try await PluginDataStore.orgFind(plugin: plugin, org: org, key: key, now: clock.millis, on: $0) }.map(entry)
    }

    /// The namespace of `installID`, which must be an install of this org: the id can come from
    /// a request, so every call checks it (another org's install, or none, is 404 `not_found`
    /// and touches nothing).
    public func install(_ installID: String) -> any PluginStorage {
        OrgInstallStorage(base: HostPluginStorage(database: database, plugin: plugin, install: installID, org: org, indexedByOrg: orgWideReads,
                                                  quotaBytes: installQuota, clock: clock, writes: writes))
    }

    public var own: any PluginStorage {
        HostPluginStorage(database: database, plugin: plugin, install: org, org: org, indexedByOrg: orgWideReads, quotaBytes: HostPluginStorage.orgQuota,
                          clock: clock, writes: writes)
    }

    private func entry(_ row: PluginDataStore.OrgRow) throws -> StoredEntry {
        StoredEntry(installID: row.install == org ? nil : row.install, key: row.key,
                    value: StoredValue(value: try JSONValue(parsing: row.value), version: row.version))
    }
}

/// An install namespace reached from an org-level call: each call first checks the install
/// belongs to the org (an install row, live or uninstalled, of that org).
struct OrgInstallStorage: PluginStorage {
    let base: HostPluginStorage

    private func checked() async throws -> HostPluginStorage {
        let owner = try await base.database.read { try await InstallStore.find(id: base.install, on: $0)?.orgId }
        guard owner == base.org else { throw CommandError.notFound("Install \(base.install) is not an install of this org.") }
        return base
    }

    func get(_ key: String) async throws -> StoredValue? { try await checked().get(key) }
    func set(_ key: String, _ value: JSONValue, expiresAt: Date?) async throws -> Int { try await checked().set(key, value, expiresAt: expiresAt) }
    func create(_ key: String, _ value: JSONValue, expiresAt: Date?, emitting events: [EventDraft]) async throws -> Bool {
        try await checked().create(key, value, expiresAt: expiresAt, emitting: events)
    }
    func delete(_ key: String) async throws -> Bool { try await checked().delete(key) }
    func keys(prefix: String, after: String?, limit: Int) async throws -> [String] { try await checked().keys(prefix: prefix, after: after, limit: limit) }
    func deleteAll() async throws { try await checked().deleteAll() }
}

/// Plugins' storage over `plugin_kv`. The keys of the plugins in `orgWideReads` (those whose
/// manifest declares ``PluginManifest/orgWideReads``) are indexed by org; the others' are not,
/// and their org-wide reads throw ``OrgWideReadsNotDeclared``. An install's namespace holds
/// what the plugin's manifest declares (``PluginManifest/installStorageBytes``, in
/// `installQuotas`), else ``HostPluginStorage/defaultQuota``.
public struct HostStorageProvider: PluginStorageProvider {
    let database: Database
    let clock: WallClock
    let writes: PluginWrites
    let orgWideReads: Set<String>
    let installQuotas: [String: Int]

    public init(database: Database, clock: WallClock, orgWideReads: Set<String>, installQuotas: [String: Int] = [:],
                fanOut: FanOut = FanOut(manifests: Manifests())) {
        self.database = database
        self.clock = clock
        self.writes = PluginWrites(database: database, clock: clock, fanOut: fanOut)
        self.orgWideReads = orgWideReads
        self.installQuotas = installQuotas
    }

    /// The provider for these plugins, as their manifests declare.
    public init(database: Database, clock: WallClock, manifests: [PluginManifest], fanOut: FanOut = FanOut(manifests: Manifests())) {
        self.init(database: database, clock: clock, orgWideReads: Set(manifests.filter(\.orgWideReads).map(\.id)),
                  installQuotas: Dictionary(manifests.compactMap { manifest in manifest.installStorageBytes.map { (manifest.id, $0) } },
                                            uniquingKeysWith: { first, _ in first }),
                  fanOut: fanOut)
    }

    private func installQuota(_ plugin: String) -> Int { installQuotas[plugin] ?? HostPluginStorage.defaultQuota }

    public func storage(plugin: String, install: String, org: String) -> any PluginStorage {
        HostPluginStorage(database: database, plugin: plugin, install: install, org: org, indexedByOrg: orgWideReads.contains(plugin),
                          quotaBytes: installQuota(plugin), clock: clock, writes: writes)
    }

    public func orgStorage(plugin: String, org: String) -> any OrgStorage {
        HostOrgStorage(database: database, plugin: plugin, org: org, orgWideReads: orgWideReads.contains(plugin), installQuota: installQuota(plugin),
                       clock: clock, writes: writes)
    }

    /// Brings the org index in line with the manifests (``PluginDataStore/indexByOrg(_:at:on:)``):
    /// run at start, before the plugins are called.
    public func reconcileOrgIndex(logger: Logger) async throws {
        let filled = try await database.transaction { [orgWideReads, clock] in
            try await PluginDataStore.indexByOrg(orgWideReads, at: clock.millis, on: $0)
        }
        for plugin in filled {
            logger.info("plugin keys indexed by org", metadata: ["plugin": "\(plugin)"])
        }
    }
}

/// One plugin write of the group commit: a put or delete of a key, and the events a
/// ``PluginStorage/create(_:_:expiresAt:emitting:)`` puts in the outbox when its key is written.
public struct PluginWrite: Sendable {
    public var write: PluginDataStore.Write
    /// Encoded by the caller (``Outbox/Encoded``), so the batch only inserts them.
    var events: [Outbox.Encoded]

    init(_ write: PluginDataStore.Write, events: [Outbox.Encoded] = []) {
        self.write = write
        self.events = events
    }
}

/// What a plugin write did, and whether its batch made deliveries of the events it wrote.
public struct PluginWriteOutcome: Sendable, Equatable {
    public var result: PluginDataStore.WriteResult
    /// The write stored its events, and they (with the others of its batch) made at least one
    /// delivery: the delivery senders have work.
    public var madeDeliveries: Bool
}

/// Plugins' writes (puts and deletes of single keys) group-committed: each batch is a few
/// statements in one transaction (``PluginDataStore/apply(_:on:)``), with the outbox rows of
/// the creates that wrote their key.
public typealias PluginWrites = GroupCommit<PluginWrite, PluginWriteOutcome>

extension GroupCommit where Operation == PluginWrite, Output == PluginWriteOutcome {
    /// The events of a batch get their deliveries in the batch's transaction
    /// (``Outbox/writeRouted(_:by:reads:on:)``, one statement a batch). `fanOut` is the
    /// runtime's (sharing its manifest cache); storage built alone (tests) gets its own.
    public convenience init(database: Database, clock: WallClock, fanOut: FanOut = FanOut(manifests: Manifests())) {
        // Puts alone (no delete, no event) are one upsert after the batch's reads: on
        // PostgreSQL no transaction around them.
        let alone: @Sendable ([PluginWrite]) -> Bool = { operations in
            operations.allSatisfy { operation in
                guard operation.events.isEmpty, case .put = operation.write else { return false }
                return true
            }
        }
        self.init(database: database, maxBatch: 256, alone: alone) { operations, db in
            let results = try await PluginDataStore.apply(operations.map(\.write), on: db)
            // Each install read once per batch, in the batch's transaction: one uninstalled
            // meanwhile fails this write alone (the batch is retried without it).
            var owners: [String: InstallRecord] = [:]
            var routed: [(event: Outbox.Encoded, install: InstallRecord)] = []
            for (operation, result) in zip(operations, results) where !operation.events.isEmpty {
                guard case .stored = result, case .put(_, let installID, _, _, _, _, _, _, _) = operation.write else { continue }
                let owner: InstallRecord
                if let known = owners[installID] {
                    owner = known
                } else {
                    guard let found = try await InstallStore.live(id: installID, on: db) else {
                        throw CommandError.notFound("Install \(installID) is gone.")
                    }
                    owners[installID] = found
                    owner = found
                }
                routed += operation.events.map { ($0, owner) }
            }
            var reads = FanOut.Reads()
            let made = try await Outbox.writeRouted(routed, by: fanOut, reads: &reads, on: db) > 0
            return zip(operations, results).map { operation, result in
                guard made, !operation.events.isEmpty, case .stored = result else { return PluginWriteOutcome(result: result, madeDeliveries: false) }
                return PluginWriteOutcome(result: result, madeDeliveries: true)
            }
        }
    }
}
