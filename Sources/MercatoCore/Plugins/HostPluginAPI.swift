import Foundation
public import MercatoHooks
public import MercatoStorage

/// What the host offers plugins, over the core's services.
public struct HostPluginAPI: PluginAPI {
    let database: Database
    let installs: InstallService
    let clock: WallClock

    public init(database: Database, installs: InstallService, clock: WallClock) {
        self.database = database
        self.installs = installs
        self.clock = clock
    }

    public func emit(_ event: EventDraft, for installID: String) async throws {
        try await database.transaction { db in
            guard let install = try await InstallStore.live(id: installID, on: db) else { throw CommandError.notFound("Install \(installID) is gone.") }
            let now = clock.millis
            let payload: JSONValue = .object(["type": .string(event.type), "timestamp": .string(Timestamp.rfc3339(Timestamp.date(millis: now))), "data": event.data])
            try await OutboxStore.insert(
                OutboxEventRecord(id: RecordID.make("msg", millis: now), orgId: install.orgId, installId: install.id, appId: install.appId,
                                  type: event.type, payload: try InstallService.json(payload), createdAt: now),
                on: db
            )
        }
    }

    public func config(of installID: String) async throws -> [String: JSONValue] {
        try await installs.configInClear(installID)
    }
}
