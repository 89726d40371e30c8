import Foundation
public import Logging
public import MercatoHooks
import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// Runs plugins for the host: routes commands and API routes to the plugin that declared them
/// and runs "has been" hooks, each call behind a timeout and an error boundary, counted per
/// plugin, hook and outcome. A plugin that fails too often is disabled (the crash-loop rule).
public final class PluginHost: Sendable {
    public let capabilities: Capabilities
    private let plugins: [String: any MercatoPlugin]
    let logger: Logger
    /// How long a command handler or a route may take.
    public let commandTimeout: Duration
    /// How long a "has been" hook may take.
    public let hookTimeout: Duration
    /// Where plugins keep their data.
    let storage: any PluginStorageProvider
    let health: PluginHealth
    let callsCounted = CounterFamily("mercato_plugin_calls_total", "plugin", "hook", "outcome")
    let callsTimed = TimerFamily("mercato_plugin_call_duration_seconds", "plugin", "hook")

    public init(plugins: [any MercatoPlugin], logger: Logger, clock: WallClock = .system, commandTimeout: Duration = .seconds(10),
                hookTimeout: Duration = .seconds(30), crashLoop: CrashLoopRule = CrashLoopRule(), storage: any PluginStorageProvider) throws {
        self.capabilities = try Capabilities(manifests: plugins.map { type(of: $0).manifest })
        self.plugins = Dictionary(uniqueKeysWithValues: plugins.map { (type(of: $0).manifest.id, $0) })
        self.logger = logger
        self.commandTimeout = commandTimeout
        self.hookTimeout = hookTimeout
        self.storage = storage
        self.health = PluginHealth(rule: crashLoop, clock: clock, ids: plugins.map { type(of: $0).manifest.id }, logger: logger)
    }

    /// Plugin ids in the order hooks run: deterministic, by id.
    public var pluginIDs: [String] { plugins.keys.sorted() }

    /// Routes the plugins add to the management API, by plugin id then declaration order.
    public var routes: [(plugin: String, definition: RouteDefinition)] {
        pluginIDs.flatMap { id in type(of: plugins[id]!).manifest.routes.map { (id, $0) } }
    }

    /// Unauthenticated routes the plugins add, by plugin id then declaration order.
    public var publicRoutes: [(plugin: String, definition: PublicRouteDefinition)] {
        pluginIDs.flatMap { id in type(of: plugins[id]!).manifest.publicRoutes.map { (id, $0) } }
    }

    // MARK: Lifecycle

    /// Calls `activate` on every plugin in order. A plugin whose activation fails or times out
    /// is disabled; the others start.
    public func activate(_ api: any PluginAPI) async {
        for id in pluginIDs {
            let plugin = plugins[id]!
            if case .failure = await call(plugin: id, hook: "activate", timeout: hookTimeout, countsFailures: false, { try await plugin.activate(api) }) {
                health.disable(id, reason: "activation failed")
            }
        }
    }

    /// Calls `deactivate` on every plugin at once, waiting at most `timeout` in all.
    public func deactivate(timeout: Duration = .seconds(5)) async {
        await withTaskGroup(of: Void.self) { group in
            for id in pluginIDs {
                let plugin = plugins[id]!
                group.addTask {
                    _ = await self.call(plugin: id, hook: "deactivate", timeout: timeout, countsFailures: false) { await plugin.deactivate() }
                }
            }
        }
    }

    // MARK: Health

    /// Every plugin's state, by id.
    public func status() -> [PluginStatus] {
        pluginIDs.map { id in health.status(id, version: type(of: plugins[id]!).manifest.version) }
    }

    public func isDisabled(_ id: String) -> Bool { health.isDisabled(id) }

    /// Turns a disabled plugin back on and forgets its failures; `false` for an unknown id.
    @discardableResult
    public func enable(_ id: String) -> Bool {
        guard plugins[id] != nil else { return false }
        health.enable(id)
        return true
    }

    // MARK: Commands

    /// How a handler call ended.
    public enum Outcome: Sendable {
        case result(JSONValue)
        /// The plugin reported a failure for the sender.
        case failed(CommandError)
        /// The plugin threw something else or crashed its task: 500 `handler_failed`.
        case crashed
        /// Past ``commandTimeout``: 504 `handler_timeout`.
        case timedOut
        /// The crash-loop rule disabled the plugin: 503 `plugin_disabled`.
        case disabled
    }

    /// The plugin that serves `command`, if any.
    public func plugin(serving command: String) -> String? { capabilities.commands[command]?.plugin }

    /// Runs `request` on its plugin, bounded by the timeout; never throws.
    public func run(_ request: CommandRequest, requestID: String?, logger: Logger, api: any PluginAPI) async -> Outcome {
        guard let entry = capabilities.commands[request.command], let plugin = plugins[entry.plugin] else {
            return .failed(.unknownCommand(request.command))
        }
        guard !health.isDisabled(entry.plugin) else { return .disabled }
        let context = HookContext(requestID: requestID, logger: logger, api: api,
                                  storage: storage.storage(plugin: entry.plugin, install: request.install.installID, org: request.install.orgID))
        switch await call(plugin: entry.plugin, hook: "handle", timeout: commandTimeout, logger: logger, requestID: requestID,
                          { try await plugin.handle(request, context) }) {
        case .success(let value): return .result(value)
        case .failure(.failed(let error)): return .failed(error)
        case .failure(.crashed): return .crashed
        case .failure(.timedOut): return .timedOut
        }
    }

    /// Runs a plugin route; never throws. `.result` carries the route's response.
    public func route(_ request: RouteRequest, plugin id: String, requestID: String?, logger: Logger, api: any PluginAPI) async -> Result<RouteResponse, CallFailure>? {
        guard let plugin = plugins[id] else { return nil }
        guard !health.isDisabled(id) else { return nil }
        let context = OrgContext(requestID: requestID, logger: logger, api: api, org: request.org, storage: storage.orgStorage(plugin: id, org: request.org.id))
        return await call(plugin: id, hook: "route", timeout: commandTimeout, logger: logger, requestID: requestID) { try await plugin.handleRoute(request, context) }
    }

    /// Runs a plugin's public route with the storage of the install it names; never throws.
    /// `nil` when the plugin is unknown or disabled.
    public func publicRoute(_ request: PublicRouteRequest, plugin id: String, requestID: String?, logger: Logger,
                            api: any PluginAPI) async -> Result<RouteResponse, CallFailure>? {
        guard let plugin = plugins[id], !health.isDisabled(id) else { return nil }
        let context = HookContext(requestID: requestID, logger: logger, api: api,
                                  storage: storage.storage(plugin: id, install: request.install.installID, org: request.install.orgID))
        return await call(plugin: id, hook: "public_route", timeout: commandTimeout, logger: logger, requestID: requestID) { try await plugin.handlePublicRoute(request, context) }
    }

    // MARK: "Has been" hooks

    /// The install hook an outbox event type calls, if any.
    public enum Hook: String, Sendable {
        case installCreated, installRemoved, configChanged, connectionChanged

        public init?(eventType: String) {
            switch eventType {
            case "app.installed": self = .installCreated
            case "app.uninstalled": self = .installRemoved
            case "install.config_updated": self = .configChanged
            case "connection.connected", "connection.disconnected", "connection.refresh_failed": self = .connectionChanged
            default: return nil
            }
        }
    }

    /// What a hook round left to do: plugins whose call failed, and plugins skipped because
    /// they are disabled. Both still owe the hook.
    public struct Round: Sendable, Equatable {
        public var failed: [String] = []
        public var skipped: [String] = []
        public var isComplete: Bool { failed.isEmpty && skipped.isEmpty }
    }

    /// Calls `hook` on `only` (or every plugin) in order, each bounded and contained.
    public func dispatch(_ hook: Hook, event: String, install: InstallInfo, only: [String]? = nil, api: any PluginAPI) async -> Round {
        await round(only) { id, plugin in
            let context = HookContext(requestID: nil, logger: self.logger, api: api,
                                      storage: self.storage.storage(plugin: id, install: install.installID, org: install.orgID))
            return await self.call(plugin: id, hook: hook.rawValue, timeout: self.hookTimeout) {
                switch hook {
                case .installCreated: try await plugin.installCreated(install, context)
                case .installRemoved: try await plugin.installRemoved(install, context)
                case .configChanged: try await plugin.configChanged(install, context)
                case .connectionChanged: try await plugin.connectionChanged(install, event: event, context)
                }
            }
        }
    }

    /// Calls `activityRecorded` on `only` (or every plugin) in order, each bounded and contained.
    public func dispatch(_ activity: Activity, org: OrgInfo, only: [String]? = nil, api: any PluginAPI) async -> Round {
        await round(only) { id, plugin in
            let context = OrgContext(requestID: activity.requestID, logger: self.logger, api: api, org: org,
                                     storage: self.storage.orgStorage(plugin: id, org: org.id))
            return await self.call(plugin: id, hook: "activityRecorded", timeout: self.hookTimeout) { try await plugin.activityRecorded(activity, context) }
        }
    }

    private func round(_ only: [String]?, _ body: (String, any MercatoPlugin) async -> Result<Void, CallFailure>) async -> Round {
        var round = Round()
        for id in pluginIDs where only?.contains(id) ?? true {
            if health.isDisabled(id) {
                round.skipped.append(id)
                continue
            }
            if case .failure = await body(id, plugins[id]!) { round.failed.append(id) }
        }
        return round
    }

    // MARK: The error boundary

    /// Why a plugin call did not answer.
    public enum CallFailure: Error, Sendable {
        /// The plugin reported a failure for the caller (not counted against the plugin).
        case failed(CommandError)
        /// It threw another error, or its task crashed.
        case crashed
        case timedOut
    }

    /// Runs `body` for `plugin`, raced against `timeout` in its own task, counted in metrics.
    /// Crashes and timeouts count toward the crash-loop rule when `countsFailures`; their log
    /// lines name `requestID` when given.
    func call<T: Sendable>(plugin id: String, hook: String, timeout: Duration, countsFailures: Bool = true, logger: Logger? = nil,
                           requestID: String? = nil, _ body: @escaping @Sendable () async throws -> T) async -> Result<T, CallFailure> {
        let log = logger ?? self.logger
        @Sendable func failing(_ metadata: Logger.Metadata) -> Logger.Metadata {
            guard let requestID else { return metadata }
            return metadata.merging(["request_id": .string(requestID)]) { old, _ in old }
        }
        let start = ContinuousClock.now
        // An unstructured task, raced against the deadline: a plugin that ignores cancellation
        // cannot hold the caller (a task group would wait for it). It inherits no task-locals
        // (``race``); the one Mercato reads across a plugin call, the install a public route
        // serves, is carried over.
        let served = InstallService.servedInstall
        let result = await Self.race(timeout: timeout, timedOut: .failure(.timedOut)) { () async -> Result<T, CallFailure> in
            do {
                if let served { return .success(try await InstallService.$servedInstall.withValue(served) { try await body() }) }
                return .success(try await body())
            }
            catch let error as CommandError { return .failure(.failed(error)) }
            catch {
                log.error("plugin call threw", metadata: failing(["plugin": "\(id)", "hook": "\(hook)", "error_type": "\(type(of: error))"]))
                return .failure(.crashed)
            }
        }
        let outcome: String
        switch result {
        case .success: outcome = "ok"
        case .failure(.failed): outcome = "failed"
        case .failure(.crashed): outcome = "crashed"
        case .failure(.timedOut):
            outcome = "timeout"
            log.error("plugin call timed out", metadata: failing(["plugin": "\(id)", "hook": "\(hook)", "timeout": "\(timeout)"]))
        }
        callsCounted(id, hook, outcome).increment()
        callsTimed(id, hook)
            .recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        if countsFailures, outcome == "crashed" || outcome == "timeout" {
            health.recordFailure(id, hook: hook, outcome: outcome)
        }
        return result
    }

    /// `body`'s value, or `timedOut` once `timeout` passes (`body`'s task is then cancelled and
    /// left to end on its own). One task per call, started in place (`Task.immediateDetached`):
    /// it runs on this thread up to its first suspension, so a body that never suspends (`ping`)
    /// answers before the caller would suspend, with no job scheduled for the task nor for the
    /// caller's resumption. The deadline is a timer on an event loop, armed only for a body still
    /// running and cancelled when it answers first. The task is detached: it copies none of the
    /// caller's task-locals (a request carries four, an allocation each per call). The
    /// continuation is resumed exactly once, by whoever claims the deadline first.
    static func race<T: Sendable>(timeout: Duration, timedOut: T, _ body: @escaping @Sendable () async -> T) async -> T {
        let deadline = Deadline()
        return await withUnsafeContinuation { (continuation: UnsafeContinuation<T, Never>) in
            let task = Task.immediateDetached {
                let value = await body()
                if deadline.claim() { continuation.resume(returning: value) }
            }
            if deadline.isClaimed { return }
            deadline.arm(MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                if deadline.claim() {
                    task.cancel()
                    continuation.resume(returning: timedOut)
                }
            })
        }
    }
}

/// Gives plugins their storage: per install, and per org.
public protocol PluginStorageProvider: Sendable {
    func storage(plugin: String, install: String, org: String) -> any PluginStorage
    func orgStorage(plugin: String, org: String) -> any OrgStorage
}

/// Who answers a raced call first, the call or its timer; the first claim wins and cancels the
/// timer, so no timer outlives its call.
final class Deadline: Sendable {
    private let state = Mutex<(claimed: Bool, timer: Scheduled<Void>?)>((false, nil))

    func claim() -> Bool {
        let (won, timer) = state.withLock { s -> (Bool, Scheduled<Void>?) in
            if s.claimed { return (false, nil) }
            s.claimed = true
            defer { s.timer = nil }
            return (true, s.timer)
        }
        timer?.cancel()
        return won
    }

    /// Whether the call or its timer answered already.
    var isClaimed: Bool { state.withLock { $0.claimed } }

    func arm(_ timer: Scheduled<Void>) {
        let late = state.withLock { s -> Bool in
            if s.claimed { return true }
            s.timer = timer
            return false
        }
        if late { timer.cancel() }
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
