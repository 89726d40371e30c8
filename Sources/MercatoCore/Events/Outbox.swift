import Foundation
import MercatoHooks
import MercatoStorage
import SQLKit

/// The one writer of `outbox_events`. An event enters the outbox in the transaction of the
/// change it reports, so a change never commits without its event (nor an event without its
/// change). A plugin's events get their deliveries in that transaction too (``FanOut``,
/// ``writeRouted(_:by:reads:on:)``); the others are fanned out by `DeliveryService`'s pass, and
/// `HookDispatcher` runs the plugins' hooks. The row's id (`msg_...`) is the `webhook-id` every
/// delivery of it will carry.
enum Outbox {
    /// Writes `type` with `data` as it will be delivered: `{"type", "timestamp", "data"}`;
    /// answers the event's id. A type no plugin hook takes (``PluginHost/Hook``), e.g.
    /// `inbound.received` or a plugin's own events, is written with its hooks done, so the
    /// hook dispatcher never claims, reads and completes it (a transaction per event).
    @discardableResult
    static func write(_ type: String, data: JSONValue, org: String, install: String?, app: String?, at now: Int64,
                      on db: any SQLDatabase) async throws -> String {
        let id = try await insert(type, data: data, org: org, install: install, app: app, at: now, on: db)
        Wakeup.fanOut.signal()
        return id
    }

    /// An event of an install, as a batch of writes emits it.
    struct Draft: Sendable {
        var type: String
        var data: JSONValue
        var org: String
        var install: String
        var app: String
        var at: Int64
    }

    /// ``write(_:data:org:install:app:at:on:)`` for `drafts`, in one statement, with each
    /// event's deliveries made at once by `fanOut` in the same transaction, the rows stored
    /// dispatched (the fan-out pass never reads them); answers how many deliveries. The caller
    /// wakes the senders once its transaction committed (``Wakeup/senders``).
    @discardableResult
    static func writeRouted(_ drafts: [Draft], by fanOut: FanOut, reads: inout FanOut.Reads, on db: any SQLDatabase) async throws -> Int {
        guard !drafts.isEmpty else { return 0 }
        var records: [OutboxEventRecord] = []
        records.reserveCapacity(drafts.count)
        var hooked = false
        for draft in drafts {
            let record = try record(draft.type, data: draft.data, org: draft.org, install: draft.install, app: draft.app, at: draft.at, dispatched: true)
            hooked = hooked || record.hooksDoneAt == nil
            records.append(record)
        }
        try await OutboxStore.insert(records, on: db)
        if hooked { Wakeup.hooks.signal() }
        var made = 0
        for record in records {
            made += try await fanOut.route(OutboxEventHeader(id: record.id, orgId: record.orgId, installId: record.installId, appId: record.appId, type: record.type),
                                           at: record.createdAt, reads: &reads, on: db)
        }
        return made
    }

    private static func insert(_ type: String, data: JSONValue, org: String, install: String?, app: String?, at now: Int64,
                               on db: any SQLDatabase) async throws -> String {
        let record = try record(type, data: data, org: org, install: install, app: app, at: now, dispatched: false)
        try await OutboxStore.insert(record, on: db)
        if record.hooksDoneAt == nil { Wakeup.hooks.signal() }
        return record.id
    }

    /// The row of an event: its payload as it will be delivered, `{"type", "timestamp", "data"}`.
    private static func record(_ type: String, data: JSONValue, org: String, install: String?, app: String?, at now: Int64,
                               dispatched: Bool) throws -> OutboxEventRecord {
        let payload: JSONValue = .object([
            "type": .string(type), "timestamp": .string(PluginSupport.timestamp(Timestamp.date(millis: now))), "data": data,
        ])
        let hooked = PluginHost.Hook(eventType: type) != nil
        return OutboxEventRecord(id: RecordID.make("msg", millis: now), orgId: org, installId: install, appId: app, type: type,
                                 payload: try JSONCoding.text(payload), createdAt: now, dispatchedAt: dispatched ? now : nil,
                                 hooksDoneAt: hooked ? nil : now)
    }
}
