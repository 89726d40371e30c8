public import Foundation
public import Logging
public import MercatoHooks
import Synchronization

/// A host in memory, to test a plugin without a server or a database: storage per namespace
/// (installs and orgs) with the host's quota, an outbox that records what a plugin emits, and
/// config values a test sets.
///
/// ```swift
/// let host = FakeHost()
/// let install = host.install(app: "acme", scopes: ["kv:write"])
/// let result = try await KVPlugin().handle(host.command("kv.set", ["key": "a", "value": 1], install), host.context(install))
/// ```
public final class FakeHost: Sendable {
    struct State {
        /// namespace → key → value
        var data: [String: [String: StoredValue]] = [:]
        /// namespace → key → when it stops reading (keys written with an expiry)
        var expiries: [String: [String: Date]] = [:]
        /// namespace → org id
        var orgOf: [String: String] = [:]
        var emitted: [(install: String, event: EventDraft)] = []
        var configs: [String: [String: JSONValue]] = [:]
        /// install id → its connection's token, or the error `accessToken(of:)` throws
        var tokens: [String: Result<AccessToken, CommandError>] = [:]
        var tokenRequests = 0
        /// install id → provider → the secret `inboundSecret(of:provider:)` answers
        var inboundSecrets: [String: [String: String]] = [:]
    }

    let state = Mutex(State())
    /// The host's time, for keys written with an expiry (tests move it).
    public let now: @Sendable () -> Date
    /// Bytes per (plugin, namespace), as the host counts them (key + JSON value).
    public let quotaBytes: Int
    public let logger: Logger

    public init(quotaBytes: Int = 10 * 1024 * 1024, now: @escaping @Sendable () -> Date = { Date() }) {
        self.quotaBytes = quotaBytes
        self.now = now
        var logger = Logger(label: "mercato.test-host")
        logger.logLevel = .critical
        self.logger = logger
    }

    /// A new install of `app` in `org`.
    public func install(app: String = "test-app", org: OrgInfo = OrgInfo(id: "org_test", name: "Test Org", plan: "enterprise"),
                        scopes: [String] = [], config: [String: JSONValue] = [:]) -> InstallInfo {
        let id = "ins_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        state.withLock {
            $0.orgOf[id] = org.id
            $0.configs[id] = config
        }
        return InstallInfo(installID: id, orgID: org.id, orgName: org.name, appKey: app, appVersion: "1.0.0", grantedScopes: scopes, status: "active")
    }

    public func command(_ name: String, _ args: [String: JSONValue] = [:], _ install: InstallInfo) -> CommandRequest {
        CommandRequest(id: "cmd_" + UUID().uuidString.lowercased(), command: name, args: args, install: install)
    }

    /// The context a command or install hook of `install` gets.
    public func context(_ install: InstallInfo) -> HookContext {
        HookContext(requestID: "req_test", logger: logger, api: api, storage: storage(namespace: install.installID, org: install.orgID))
    }

    /// The context a route or activity hook of `plugin` gets in `org`. As on the host, its
    /// org-wide reads throw ``OrgWideReadsNotDeclared`` unless the plugin's manifest declares
    /// ``PluginManifest/orgWideReads``.
    public func orgContext(_ org: OrgInfo, for plugin: any MercatoPlugin) -> OrgContext {
        let manifest = type(of: plugin).manifest
        return OrgContext(requestID: "req_test", logger: logger, api: api, org: org,
                          storage: FakeOrgStorage(host: self, org: org.id, plugin: manifest.id, orgWideReads: manifest.orgWideReads))
    }

    public var api: any PluginAPI { FakePluginAPI(host: self) }

    /// Events emitted so far, in order.
    public var emitted: [(install: String, event: EventDraft)] { state.withLock { $0.emitted } }

    /// Makes `accessToken(of:)` answer `token` (or throw `error`) for `install`; without a
    /// call it throws 409 `not_connected`, as the host does for an install never connected.
    public func connect(_ install: InstallInfo, token: AccessToken) {
        state.withLock { $0.tokens[install.installID] = .success(token) }
    }

    public func connectionFails(_ install: InstallInfo, with error: CommandError) {
        state.withLock { $0.tokens[install.installID] = .failure(error) }
    }

    /// Makes `install` declare the inbound provider `provider` with `secret` (as the app's
    /// manifest `inbound` and the install's secret config field would).
    public func declareInbound(_ install: InstallInfo, provider: String, secret: String) {
        state.withLock { $0.inboundSecrets[install.installID, default: [:]][provider] = secret }
    }

    /// The host forgets `install`, as when it is uninstalled (perhaps through another node):
    /// its config, connection and inbound secrets go; its plugin storage stays until the
    /// plugin's ``MercatoPlugin/installRemoved(_:_:)`` deletes it.
    public func uninstall(_ install: InstallInfo) {
        state.withLock {
            $0.configs[install.installID] = nil
            $0.tokens[install.installID] = nil
            $0.inboundSecrets[install.installID] = nil
        }
    }

    /// How many times plugins asked for an access token.
    public var tokenRequests: Int { state.withLock { $0.tokenRequests } }

    /// Keys kept in a namespace (an install id, or an org id for the org's own).
    public func keys(in namespace: String) -> [String] { state.withLock { ($0.data[namespace] ?? [:]).keys.sorted() } }

    func storage(namespace: String, org: String) -> any PluginStorage {
        state.withLock { $0.orgOf[namespace] = org }
        return FakeStorage(host: self, namespace: namespace)
    }
}

struct FakePluginAPI: PluginAPI {
    let host: FakeHost

    func emit(_ event: EventDraft, for installID: String) async throws {
        host.state.withLock { $0.emitted.append((installID, event)) }
    }

    func config(of installID: String) async throws -> [String: JSONValue] {
        guard let config = host.state.withLock({ $0.configs[installID] }) else { throw CommandError.notFound("Install \(installID) is gone.") }
        return config
    }

    func inboundSecret(of installID: String, provider: String) async throws -> InboundSecret? {
        host.state.withLock { $0.inboundSecrets[installID]?[provider] }.map(InboundSecret.init)
    }

    func accessToken(of installID: String) async throws -> AccessToken {
        let answer = host.state.withLock { state in
            state.tokenRequests += 1
            return state.tokens[installID]
        }
        guard let answer else {
            throw CommandError(status: 409, code: "not_connected", message: "Install \(installID) has no connected account.")
        }
        return try answer.get()
    }
}

/// One namespace of ``FakeHost``, with the host's quota rule.
struct FakeStorage: PluginStorage {
    let host: FakeHost
    let namespace: String

    /// Whether `key` was written with an expiry that has passed (it still counts against the
    /// quota until then, as in the host, where a sweep removes it).
    private func expired(_ key: String, in state: FakeHost.State) -> Bool {
        state.expiries[namespace]?[key].map { $0 <= host.now() } ?? false
    }

    func get(_ key: String) async throws -> StoredValue? {
        host.state.withLock { expired(key, in: $0) ? nil : $0.data[namespace]?[key] }
    }

    func set(_ key: String, _ value: JSONValue, expiresAt: Date?) async throws -> Int {
        let size = key.utf8.count + (try JSONEncoder().encode(value)).count
        return try host.state.withLock { state in
            var space = state.data[namespace] ?? [:]
            let used = try space.filter { $0.key != key }.reduce(0) { $0 + $1.key.utf8.count + (try JSONEncoder().encode($1.value.value)).count }
            if used + size > host.quotaBytes {
                throw CommandError(status: 413, code: "quota_exceeded", message: "This install's storage is full.")
            }
            let version = expired(key, in: state) ? 1 : (space[key]?.version ?? 0) + 1
            space[key] = StoredValue(value: value, version: version)
            state.data[namespace] = space
            state.expiries[namespace, default: [:]][key] = expiresAt
            return version
        }
    }

    func create(_ key: String, _ value: JSONValue, expiresAt: Date?, emitting events: [EventDraft]) async throws -> Bool {
        let size = key.utf8.count + (try JSONEncoder().encode(value)).count
        return try host.state.withLock { state in
            if state.data[namespace]?[key] != nil && !expired(key, in: state) { return false }
            if !events.isEmpty && state.orgOf[namespace] == namespace {
                throw CommandError(status: 400, code: "invalid_request", message: "Events are emitted for an install; an org's own storage has none.")
            }
            var space = state.data[namespace] ?? [:]
            let used = try space.filter { $0.key != key }.reduce(0) { $0 + $1.key.utf8.count + (try JSONEncoder().encode($1.value.value)).count }
            if used + size > host.quotaBytes {
                throw CommandError(status: 413, code: "quota_exceeded", message: "This install's storage is full.")
            }
            space[key] = StoredValue(value: value, version: 1)
            state.data[namespace] = space
            state.expiries[namespace, default: [:]][key] = expiresAt
            state.emitted += events.map { (install: namespace, event: $0) }
            return true
        }
    }

    func delete(_ key: String) async throws -> Bool {
        host.state.withLock { state in
            let live = !expired(key, in: state)
            state.expiries[namespace]?[key] = nil
            return state.data[namespace]?.removeValue(forKey: key) != nil && live
        }
    }

    func keys(prefix: String, after: String?, limit: Int) async throws -> [String] {
        let all = host.state.withLock { state in (state.data[namespace] ?? [:]).keys.filter { !expired($0, in: state) }.sorted() }
        return Array(all.filter { $0.hasPrefix(prefix) && $0 > (after ?? "") }.prefix(limit))
    }

    func deleteAll() async throws {
        host.state.withLock {
            $0.data[namespace] = nil
            $0.expiries[namespace] = nil
        }
    }
}

/// ``OrgStorage`` over every namespace of one org in ``FakeHost``.
struct FakeOrgStorage: OrgStorage {
    let host: FakeHost
    let org: String
    let plugin: String
    let orgWideReads: Bool

    func entries(prefix: String, after: String?, limit: Int, newestFirst: Bool) async throws -> [StoredEntry] {
        guard orgWideReads else { throw OrgWideReadsNotDeclared(plugin: plugin) }
        let all = host.state.withLock { state -> [StoredEntry] in
            state.data.flatMap { namespace, values -> [StoredEntry] in
                guard state.orgOf[namespace] == org else { return [] }
                return values.map { StoredEntry(installID: namespace == org ? nil : namespace, key: $0.key, value: $0.value) }
            }
        }
        let sorted = all.filter { $0.key.hasPrefix(prefix) }.sorted { newestFirst ? $0.key > $1.key : $0.key < $1.key }
        let past = after.map { a in sorted.filter { newestFirst ? $0.key < a : $0.key > a } } ?? sorted
        return Array(past.prefix(limit))
    }

    func find(_ key: String) async throws -> StoredEntry? {
        try await entries(prefix: key, after: nil, limit: 1000, newestFirst: false).first { $0.key == key }
    }

    func install(_ installID: String) -> any PluginStorage { host.storage(namespace: installID, org: org) }

    var own: any PluginStorage { host.storage(namespace: org, org: org) }
}
