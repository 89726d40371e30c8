import Foundation
public import MercatoHooks
import MercatoStorage
public import SQLKit

/// Writes an admin or lifecycle action into `audit_log`, inside the change's transaction: the
/// row commits or rolls back with the change. Plugins see it afterwards through the
/// `activityRecorded` hook (the Audit plugin keeps the org's trail). Details name fields,
/// versions and statuses, never values.
public enum ActivityLog {
    public static func record(org: String, actor: String, action: String, target: String, requestID: String?,
                              details: [String: JSONValue] = [:], at millis: Int64, on db: any SQLDatabase) async throws {
        try await AuditStore.insert(
            AuditRecord(id: RecordID.make("aud", millis: millis), orgId: org, actor: actor, action: action, target: target,
                        requestId: requestID, details: try JSONCoding.text(JSONValue.object(details)), createdAt: millis),
            on: db
        )
        Wakeup.hooks.signal()
    }
}

extension Principal {
    /// Who acted, as audit rows name it: the principal id, or `operator:<token id>`.
    public var actorID: String {
        switch self {
        case .operator(let token): "operator:\(token)"
        case .member(_, let principal, _, _): principal
        }
    }
}
