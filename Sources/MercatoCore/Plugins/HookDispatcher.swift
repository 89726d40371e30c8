public import Logging
public import MercatoHooks
public import MercatoStorage
public import ServiceLifecycle

/// Runs plugins' "has been" hooks (install created or removed, config changed) after the change
/// committed, driven from the outbox: an event is marked only after its hooks ran, so a restart
/// runs the unmarked ones again (at least once).
public struct HookDispatcher: Service {
    let database: Database
    let host: PluginHost
    let api: any PluginAPI
    let clock: WallClock
    let logger: Logger
    let idleInterval: Duration

    public init(database: Database, host: PluginHost, api: any PluginAPI, clock: WallClock, logger: Logger, idleInterval: Duration = .milliseconds(250)) {
        self.database = database
        self.host = host
        self.api = api
        self.clock = clock
        self.logger = logger
        self.idleInterval = idleInterval
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let handled: Int
            do { handled = try await dispatchPending() } catch {
                logger.error("hook dispatch failed; retrying", metadata: ["error_type": "\(type(of: error))"])
                handled = 0
            }
            if handled == 0 {
                do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: idleInterval) } } catch { return }
            }
        }
    }

    /// Runs the hooks of up to `limit` pending events; answers how many events it handled.
    @discardableResult
    public func dispatchPending(limit: Int = 100) async throws -> Int {
        let events = try await database.read { try await OutboxStore.hooksPending(limit: limit, on: $0) }
        for event in events {
            if let hook = PluginHost.Hook(eventType: event.type), let installID = event.installId,
               let info = try await installInfo(installID) {
                _ = await host.dispatch(hook, install: info, api: api)
            }
            try await database.transaction { try await OutboxStore.markHooksDone(id: event.id, at: clock.millis, on: $0) }
        }
        return events.count
    }

    private func installInfo(_ id: String) async throws -> InstallInfo? {
        try await database.read { db in
            guard let install = try await InstallStore.find(id: id, on: db), let org = try await OrgStore.find(id: install.orgId, on: db) else { return nil }
            return InstallInfo(installID: install.id, orgID: install.orgId, orgName: org.name, appKey: install.appKey, appVersion: install.version,
                               grantedScopes: (try? InstallService.strings(install.scopes)) ?? [],
                               status: install.removedAt == nil ? install.status : "uninstalled")
        }
    }
}
