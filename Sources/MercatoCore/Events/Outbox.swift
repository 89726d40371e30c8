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
        let event = try Encoded(type, data: data, at: now)
        try await OutboxStore.insert([event.record(org: org, install: install, app: app, dispatched: false)], on: db)
        if event.hooked { Wakeup.hooks.signal() }
        Wakeup.fanOut.signal()
        return event.id
    }

    /// An event with its id and its payload's text, made before the transaction that writes it
    /// (a batch of writes holds SQLite's one writer: the JSON is written outside it).
    struct Encoded: Sendable {
        let id: String
        let type: String
        /// `{"type", "timestamp", "data"}` as it will be delivered.
        let payload: String
        let at: Int64
        /// A plugin hook takes the type (``PluginHost/Hook``).
        let hooked: Bool

        init(_ type: String, data: JSONValue, at now: Int64) throws {
            try self.init(EventDraft(type: type, data: data), at: now)
        }

        /// `draft` as delivered: `{"data", "timestamp", "type"}` (members in sorted order, as
        /// every payload is written), its `verbatim` members as their text.
        init(_ draft: EventDraft, at now: Int64) throws {
            var out: [UInt8] = []
            out.reserveCapacity(256)
            out.append(contentsOf: #"{"data":"#.utf8)
            try draft.data.write(into: &out, verbatim: draft.verbatim)
            out.append(contentsOf: #","timestamp":"#.utf8)
            JSONValue.writeString(PluginSupport.timestamp(Timestamp.date(millis: now)), into: &out)
            out.append(contentsOf: #","type":"#.utf8)
            JSONValue.writeString(draft.type, into: &out)
            out.append(UInt8(ascii: "}"))
            self.id = RecordID.make("msg", millis: now)
            self.type = draft.type
            self.payload = String(decoding: out, as: UTF8.self)
            self.at = now
            self.hooked = PluginHost.Hook(eventType: type) != nil
        }

        func record(org: String, install: String?, app: String?, dispatched: Bool) -> OutboxEventRecord {
            OutboxEventRecord(id: id, orgId: org, installId: install, appId: app, type: type, payload: payload, createdAt: at,
                              dispatchedAt: dispatched ? at : nil, hooksDoneAt: hooked ? nil : at)
        }
    }

    /// ``write(_:data:org:install:app:at:on:)`` for events of installs, in one statement, with
    /// each event's deliveries made at once by `fanOut` in the same transaction, the rows stored
    /// dispatched (the fan-out pass never reads them); answers how many deliveries. The caller
    /// wakes the senders once its transaction committed (``Wakeup/senders``).
    @discardableResult
    static func writeRouted(_ events: [(event: Encoded, install: InstallRecord)], by fanOut: FanOut, reads: inout FanOut.Reads,
                            on db: any SQLDatabase) async throws -> Int {
        guard !events.isEmpty else { return 0 }
        for (_, install) in events { reads.know(install) }
        let records = events.map { $0.event.record(org: $0.install.orgId, install: $0.install.id, app: $0.install.appId, dispatched: true) }
        try await OutboxStore.insert(records, on: db)
        if events.contains(where: \.event.hooked) { Wakeup.hooks.signal() }
        var made = 0
        for record in records {
            made += try await fanOut.route(OutboxEventHeader(id: record.id, orgId: record.orgId, installId: record.installId, appId: record.appId, type: record.type),
                                           at: record.createdAt, reads: &reads, on: db)
        }
        return made
    }
}
