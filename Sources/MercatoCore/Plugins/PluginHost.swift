import Foundation
public import Logging
public import MercatoHooks
import Metrics
import Synchronization

/// Runs plugins for the host: routes commands to the plugin that declared them, with a
/// timeout and an error boundary around every call, and counts outcomes per plugin.
public final class PluginHost: Sendable {
    public let capabilities: Capabilities
    private let plugins: [String: any MercatoPlugin]
    let logger: Logger
    /// How long a command handler may take.
    public let commandTimeout: Duration
    /// How long a "has been" hook may take.
    public let hookTimeout: Duration
    /// The storage a plugin gets for an install (plugin id, install id).
    let storage: @Sendable (String, String) -> any PluginStorage

    public init(plugins: [any MercatoPlugin], logger: Logger, commandTimeout: Duration = .seconds(10), hookTimeout: Duration = .seconds(30),
                storage: @escaping @Sendable (String, String) -> any PluginStorage) throws {
        self.capabilities = try Capabilities(manifests: plugins.map { type(of: $0).manifest })
        self.plugins = Dictionary(uniqueKeysWithValues: plugins.map { (type(of: $0).manifest.id, $0) })
        self.logger = logger
        self.commandTimeout = commandTimeout
        self.hookTimeout = hookTimeout
        self.storage = storage
    }

    /// Plugin ids in the order hooks run: deterministic, by id.
    public var pluginIDs: [String] { plugins.keys.sorted() }

    /// Calls `activate` on every plugin in a deterministic order (by id).
    public func activate(_ api: any PluginAPI) async throws {
        for id in plugins.keys.sorted() { try await plugins[id]!.activate(api) }
    }

    /// How a handler call ended.
    public enum Outcome: Sendable {
        case result(JSONValue)
        /// The plugin reported a failure for the sender.
        case failed(CommandError)
        /// The plugin threw something else or crashed its task: 500 `handler_failed`.
        case crashed
        /// Past ``commandTimeout``: 504 `handler_timeout`.
        case timedOut
    }

    /// Runs `request` on its plugin, bounded by the timeout; never throws.
    public func run(_ request: CommandRequest, requestID: String?, logger: Logger, api: any PluginAPI) async -> Outcome {
        guard let entry = capabilities.commands[request.command], let plugin = plugins[entry.plugin] else {
            return .failed(.unknownCommand(request.command))
        }
        let context = HookContext(requestID: requestID, logger: logger, api: api, storage: storage(entry.plugin, request.install.installID))
        let start = ContinuousClock.now
        let timeout = commandTimeout
        // An unstructured task, raced against the deadline: a handler that ignores cancellation
        // cannot hold the request (a task group would wait for it).
        let handler = Task<Outcome, Never> {
            do { return .result(try await plugin.handle(request, context)) }
            catch let error as CommandError { return .failed(error) }
            catch {
                context.logger.error("command handler threw", metadata: [
                    "plugin": "\(entry.plugin)", "command": "\(request.command)", "error_type": "\(type(of: error))",
                ])
                return .crashed
            }
        }
        let outcome = await Self.race(handler, timeout: timeout)
        let label: String
        switch outcome {
        case .result: label = "ok"
        case .failed: label = "failed"
        case .crashed: label = "crashed"
        case .timedOut: label = "timeout"
        }
        Counter(label: "mercato_plugin_calls_total", dimensions: [("plugin", entry.plugin), ("hook", "handle"), ("outcome", label)]).increment()
        Metrics.Timer(label: "mercato_plugin_call_duration_seconds", dimensions: [("plugin", entry.plugin), ("hook", "handle")])
            .recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        return outcome
    }
}

extension PluginHost {
    /// The "has been" hook an outbox event type calls, if any.
    public enum Hook: String, Sendable {
        case installCreated, installRemoved, configChanged

        public init?(eventType: String) {
            switch eventType {
            case "app.installed": self = .installCreated
            case "app.uninstalled": self = .installRemoved
            case "install.config_updated": self = .configChanged
            default: return nil
            }
        }
    }

    /// Calls `hook` on every plugin in order, each bounded by ``hookTimeout`` and contained;
    /// answers the ids of the plugins whose call failed.
    public func dispatch(_ hook: Hook, install: InstallInfo, api: any PluginAPI, requestID: String? = nil) async -> [String] {
        var failed: [String] = []
        for id in pluginIDs {
            let plugin = plugins[id]!
            let context = HookContext(requestID: requestID, logger: logger, api: api, storage: storage(id, install.installID))
            let call = Task<Outcome, Never> {
                do {
                    switch hook {
                    case .installCreated: try await plugin.installCreated(install, context)
                    case .installRemoved: try await plugin.installRemoved(install, context)
                    case .configChanged: try await plugin.configChanged(install, context)
                    }
                    return .result(.null)
                } catch {
                    return .crashed
                }
            }
            let outcome = await Self.race(call, timeout: hookTimeout)
            let label: String
            switch outcome {
            case .result: label = "ok"
            case .timedOut: label = "timeout"
            default: label = "failed"
            }
            if label != "ok" {
                failed.append(id)
                logger.error("plugin hook failed", metadata: ["plugin": "\(id)", "hook": "\(hook.rawValue)", "outcome": "\(label)", "install_id": "\(install.installID)"])
            }
            Counter(label: "mercato_plugin_calls_total", dimensions: [("plugin", id), ("hook", hook.rawValue), ("outcome", label)]).increment()
        }
        return failed
    }

    /// The handler's outcome, or `.timedOut` once `timeout` passes (the handler is cancelled).
    static func race(_ handler: Task<Outcome, Never>, timeout: Duration) async -> Outcome {
        let once = Once()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let sleeper = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled, once.claim() {
                    handler.cancel()
                    continuation.resume(returning: .timedOut)
                }
            }
            Task {
                let value = await handler.value
                sleeper.cancel()      // no sleeping task left behind per request
                if once.claim() { continuation.resume(returning: value) }
            }
        }
    }
}

/// True for the first caller only.
final class Once: Sendable {
    private let done = Mutex(false)
    func claim() -> Bool { done.withLock { d in defer { d = true }; return !d } }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
