import Foundation
import MercatoHooks
import MercatoStorage
import SQLKit

/// The one writer of `outbox_events`. An event enters the outbox in the transaction of the
/// change it reports, so a change never commits without its event (nor an event without its
/// change); `DeliveryService` and `HookDispatcher` take it from there. The row's id (`msg_...`)
/// is the `webhook-id` every delivery of it will carry.
enum Outbox {
    /// Writes `type` with `data` as it will be delivered: `{"type", "timestamp", "data"}`;
    /// answers the event's id. A type no plugin hook takes (``PluginHost/Hook``), e.g.
    /// `inbound.received` or a plugin's own events, is written with its hooks done, so the
    /// hook dispatcher never claims, reads and completes it (a transaction per event).
    @discardableResult
    static func write(_ type: String, data: JSONValue, org: String, install: String?, app: String?, at now: Int64,
                      on db: any SQLDatabase) async throws -> String {
        let id = try await insert(type, data: data, org: org, install: install, app: app, at: now, dispatched: false, on: db)
        Wakeup.fanOut.signal()
        return id
    }

    /// ``write(_:data:org:install:app:at:on:)`` with the event's deliveries made at once by
    /// `fanOut` in the same transaction, the row stored dispatched (the fan-out pass never reads
    /// it); answers how many deliveries. The caller wakes the senders once its transaction
    /// committed (``Wakeup/senders``).
    @discardableResult
    static func writeRouted(_ type: String, data: JSONValue, org: String, install: String, app: String, at now: Int64,
                            by fanOut: FanOut, reads: inout FanOut.Reads, on db: any SQLDatabase) async throws -> Int {
        let id = try await insert(type, data: data, org: org, install: install, app: app, at: now, dispatched: true, on: db)
        return try await fanOut.route(OutboxEventHeader(id: id, orgId: org, installId: install, appId: app, type: type), at: now, reads: &reads, on: db)
    }

    private static func insert(_ type: String, data: JSONValue, org: String, install: String?, app: String?, at now: Int64, dispatched: Bool,
                               on db: any SQLDatabase) async throws -> String {
        let payload: JSONValue = .object([
            "type": .string(type), "timestamp": .string(PluginSupport.timestamp(Timestamp.date(millis: now))), "data": data,
        ])
        let id = RecordID.make("msg", millis: now)
        let hooked = PluginHost.Hook(eventType: type) != nil
        try await OutboxStore.insert(
            OutboxEventRecord(id: id, orgId: org, installId: install, appId: app, type: type,
                              payload: try JSONCoding.text(payload), createdAt: now, dispatchedAt: dispatched ? now : nil,
                              hooksDoneAt: hooked ? nil : now),
            on: db
        )
        if hooked { Wakeup.hooks.signal() }
        return id
    }
}
