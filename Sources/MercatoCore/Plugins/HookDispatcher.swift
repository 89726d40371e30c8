import Foundation
public import Logging
public import MercatoHooks
public import MercatoStorage
import Metrics
public import ServiceLifecycle

/// Runs plugins' "has been" hooks after the change committed, from two durable feeds written in
/// the change's transaction: outbox events (install created or removed, config changed,
/// connection changed) and audit rows (`activityRecorded`). A row is claimed under a lease
/// (several nodes share the work), and marked done only once every plugin ran its hook: a
/// plugin that failed is tried again on a backoff schedule, a disabled one waits until it is
/// enabled, so a restart or a crash loses nothing (at least once).
public struct HookDispatcher: Service {
    let database: Database
    let host: PluginHost
    let api: any PluginAPI
    let clock: WallClock
    let logger: Logger
    let idleInterval: Duration
    /// The longest rest while idle (``PeriodicWorker``); a hook's retry waits at least this long
    /// past its due time when nothing is written here.
    let idleRest: Duration
    /// Waits before the 1st, 2nd, ... retry of a failed hook; after the last, the hook is
    /// abandoned for that plugin (logged and counted).
    let retrySchedule: [Duration]
    /// How long a claim holds a row before another node may take it.
    let lease: Duration

    public static let defaultRetrySchedule: [Duration] = [5, 30, 120, 600, 1800, 3600, 7200, 14400].map { .seconds($0) }

    public init(database: Database, host: PluginHost, api: any PluginAPI, clock: WallClock, logger: Logger,
                idleInterval: Duration = .milliseconds(250), idleRest: Duration = .seconds(2), retrySchedule: [Duration] = defaultRetrySchedule,
                lease: Duration = .seconds(600)) {
        self.database = database
        self.host = host
        self.api = api
        self.clock = clock
        self.logger = logger
        self.idleInterval = idleInterval
        self.idleRest = idleRest
        self.retrySchedule = retrySchedule
        self.lease = lease
    }

    public func run() async throws {
        await PeriodicWorker("hook dispatch", every: idleInterval, restingUpTo: idleRest, wokenBy: .hooks, logger: logger).run { try await dispatchPending() }
    }

    /// Runs the hooks of up to `limit` due rows of each feed; answers how many rows it handled.
    @discardableResult
    public func dispatchPending(limit: Int = 20) async throws -> Int {
        var handled = 0
        for feed in HookFeedStore.Feed.allCases {
            let now = clock.millis
            let claims = try await database.transaction { db in
                try await HookFeedStore.claim(feed, limit: limit, now: now, leaseUntil: now + lease.components.seconds * 1000, on: db)
            }
            for claim in claims {
                let round = try await run(feed, claim)
                try await settle(feed, claim, round)
            }
            handled += claims.count
        }
        return handled
    }

    /// Runs the hook of one row on the plugins that still owe it.
    private func run(_ feed: HookFeedStore.Feed, _ claim: HookFeedStore.Claim) async throws -> PluginHost.Round {
        switch feed {
        case .events:
            guard let event = try await database.read({ try await OutboxStore.find(id: claim.id, on: $0) }),
                  let hook = PluginHost.Hook(eventType: event.type), let installID = event.installId,
                  let info = try await installInfo(installID) else { return PluginHost.Round() }
            return await host.dispatch(hook, event: event.type, install: info, only: claim.pending, api: api)
        case .activity:
            guard let row = try await database.read({ try await AuditStore.find(id: claim.id, on: $0) }),
                  let org = try await database.read({ try await OrgStore.find(id: row.orgId, on: $0) }) else { return PluginHost.Round() }
            let activity = Activity(id: row.id, action: row.action, actor: row.actor, target: row.target, requestID: row.requestId,
                                    details: (try? JSONValue(parsing: row.details)) ?? .object([:]),
                                    occurredAt: Timestamp.date(millis: row.createdAt))
            return await host.dispatch(activity, org: OrgInfo(id: org.id, name: org.name, plan: org.plan), only: claim.pending, api: api)
        }
    }

    /// Marks the row done, or schedules the plugins that still owe the hook.
    private func settle(_ feed: HookFeedStore.Feed, _ claim: HookFeedStore.Claim, _ round: PluginHost.Round) async throws {
        let now = clock.millis
        var owing = round.skipped
        if !round.failed.isEmpty {
            if claim.attempts < retrySchedule.count {
                owing += round.failed
            } else {
                for plugin in round.failed {
                    logger.error("plugin hook abandoned after retries", metadata: [
                        "plugin": "\(plugin)", "feed": "\(feed.rawValue)", "row": "\(claim.id)", "attempts": "\(claim.attempts + 1)",
                    ])
                    Counter(label: "mercato_plugin_hooks_abandoned_total", dimensions: [("plugin", plugin)]).increment()
                }
            }
        }
        let remaining = owing.sorted()
        try await database.transaction { db in
            if remaining.isEmpty {
                try await HookFeedStore.complete(feed, id: claim.id, at: now, on: db)
            } else {
                // Failed plugins wait their turn in the schedule; skipped (disabled) ones are
                // looked at again in a minute, without using up an attempt.
                let failedWait = retrySchedule[min(claim.attempts, retrySchedule.count - 1)]
                let wait = round.failed.isEmpty ? Duration.seconds(60) : failedWait
                try await HookFeedStore.reschedule(feed, id: claim.id, pending: remaining, nextAt: now + wait.components.seconds * 1000,
                                                   countAttempt: !round.failed.isEmpty, on: db)
            }
        }
    }

    private func installInfo(_ id: String) async throws -> InstallInfo? {
        try await database.read { db in
            guard let install = try await InstallStore.find(id: id, on: db), let org = try await OrgStore.find(id: install.orgId, on: db) else { return nil }
            return InstallInfo(installID: install.id, orgID: install.orgId, orgName: org.name, appKey: install.appKey, appVersion: install.version,
                               grantedScopes: install.scopes,
                               status: (install.removedAt == nil ? install.status : .uninstalled).rawValue)
        }
    }
}
