public import MercatoStorage
public import SQLKit

/// Who receives an outbox event (CONTRACT §5, §10): the app of the event's install when the
/// install's version subscribes to the type, and each of the org's own enabled endpoints that
/// takes it. ``route(_:at:reads:on:)`` makes their delivery rows in the caller's transaction.
///
/// Two callers, one decision: the plugin write batch routes the events it writes in the same
/// transaction (the event goes to the receivers subscribed when it was written, and its row is
/// stored already dispatched: no later pass reads and updates it), and
/// ``DeliveryService/fanOut(limit:)`` routes the events written without it (install changes,
/// events of nodes of an older version).
public struct FanOut: Sendable {
    let manifests: Manifests

    public init(manifests: Manifests) {
        self.manifests = manifests
    }

    /// What one transaction read for its events: each install and each org's endpoints once.
    public struct Reads: Sendable {
        var installs: [String: InstallRecord?] = [:]
        var endpoints: [String: [OrgWebhookRecord]] = [:]

        public init() {}

        /// An install the caller read in the same transaction.
        public mutating func know(_ install: InstallRecord) {
            installs[install.id] = .some(install)
        }
    }

    /// Makes the delivery rows of `event`; answers how many.
    @discardableResult
    public func route(_ event: OutboxEventHeader, at now: Int64, reads: inout Reads, on db: any SQLDatabase) async throws -> Int {
        // Only events about an install are fanned out (a `webhook.test` has its one delivery already).
        guard let installID = event.installId else { return 0 }
        var made = 0
        // The app of the install, when it subscribes to the type.
        if let appID = event.appId {
            if reads.installs[installID] == nil { reads.installs[installID] = .some(try await InstallStore.find(id: installID, on: db)) }
            if let install = reads.installs[installID] ?? nil,
               let manifest = try await manifests.manifest(appID: appID, version: install.version, on: db),
               let url = manifest.webhookURL, manifest.events.contains(event.type) {
                try await DeliveryStore.insert(id: event.id, appID: appID, orgID: event.orgId, installID: installID, type: event.type, url: url, at: now, on: db)
                made += 1
            }
        }
        // The org's own endpoints that take the type: the same rows, keyed by the `whe_` id.
        if reads.endpoints[event.orgId] == nil { reads.endpoints[event.orgId] = try await OrgWebhookStore.receivers(orgID: event.orgId, on: db) }
        for endpoint in reads.endpoints[event.orgId] ?? [] where endpoint.subscribes(to: event.type) {
            try await DeliveryStore.insert(id: event.id, appID: endpoint.id, orgID: event.orgId, installID: installID, type: event.type, url: endpoint.url, at: now, on: db)
            made += 1
        }
        return made
    }
}
