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
        let payload: JSONValue = .object([
            "type": .string(type), "timestamp": .string(PluginSupport.timestamp(Timestamp.date(millis: now))), "data": data,
        ])
        let id = RecordID.make("msg", millis: now)
        let hooked = PluginHost.Hook(eventType: type) != nil
        try await OutboxStore.insert(
            OutboxEventRecord(id: id, orgId: org, installId: install, appId: app, type: type,
                              payload: try JSONCoding.text(payload), createdAt: now,
                              hooksDoneAt: hooked ? nil : now),
            on: db
        )
        Wakeup.fanOut.signal()
        if hooked { Wakeup.hooks.signal() }
        return id
    }
}
