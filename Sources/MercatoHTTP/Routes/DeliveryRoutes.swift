import Foundation
import Hummingbird
import MercatoCore
import MercatoStorage

/// The developer's delivery log (CONTRACT §2): `GET /developer/apps/{key}/deliveries`,
/// `GET .../deliveries/{msg_id}` (with its attempts), `POST .../deliveries/{msg_id}/retry`,
/// `POST .../recover {since}`.
struct DeliveryRoutes {
    let log: DeliveryLogService

    struct DeliveryBody: ResponseEncodable {
        let id: String
        let type: String
        let installId: String?
        let url: String
        let status: String
        let attempts: Int
        let nextAttemptAt: Date?
        let lastStatusCode: Int?
        let lastError: String?
        let createdAt: Date
        let deliveredAt: Date?
        let attemptLog: [AttemptBody]?

        init(_ d: DeliveryRecord, attempts log: [AttemptRecord]? = nil) {
            id = d.id
            type = d.type
            installId = d.installId
            url = d.url
            status = d.status
            attempts = d.attempts
            nextAttemptAt = d.status == "pending" ? Timestamp.date(millis: d.nextAttemptAt) : nil
            lastStatusCode = d.lastStatusCode
            lastError = d.lastError
            createdAt = Timestamp.date(millis: d.createdAt)
            deliveredAt = d.deliveredAt.map { Timestamp.date(millis: $0) }
            attemptLog = log?.map(AttemptBody.init)
        }
    }

    struct AttemptBody: Encodable, Sendable {
        let attempt: Int
        let statusCode: Int?
        let durationMs: Int64
        let responseBody: String?
        let error: String?
        let at: Date

        init(_ a: AttemptRecord) {
            attempt = a.attempt
            statusCode = a.statusCode
            durationMs = a.durationMs
            responseBody = a.responseBody
            error = a.error
            at = Timestamp.date(millis: a.createdAt)
        }
    }

    struct RecoverBody: Decodable { let since: String }
    struct RecoveredBody: ResponseEncodable {
        let recovered: Int
        let more: Bool
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        api.get("developer/apps/{key}/deliveries") { request, context in
            let page = try Pagination(request)
            let query = request.uri.queryParameters
            let (rows, next) = try await log.list(
                appKey: try context.parameters.require("key"), by: try context.requirePrincipal(),
                status: query["status"].map(String.init), type: query["type"].map(String.init),
                since: try RFC3339Field.parse(query["since"].map(String.init), field: "since"), cursor: page.cursor, limit: page.limit)
            return Page(data: rows.map { DeliveryBody($0) }, nextCursor: next)
        }
        api.get("developer/apps/{key}/deliveries/{msg_id}") { _, context in
            let (delivery, attempts) = try await log.get(appKey: try context.parameters.require("key"), id: try context.parameters.require("msg_id"),
                                                         by: try context.requirePrincipal())
            return DeliveryBody(delivery, attempts: attempts)
        }
        api.post("developer/apps/{key}/deliveries/{msg_id}/retry") { _, context in
            DeliveryBody(try await log.retry(appKey: try context.parameters.require("key"), id: try context.parameters.require("msg_id"),
                                             by: try context.requirePrincipal()))
        }
        api.post("developer/apps/{key}/recover") { request, context in
            let caller = try context.requirePrincipal()
            let key = try context.parameters.require("key")
            let body = try await request.decodeJSON(RecoverBody.self, context: context)
            guard let since = try RFC3339Field.parse(body.since, field: "since") else {
                throw APIError.invalidRequest("`since` is required.", errors: [.init(field: "since", message: "is required")])
            }
            let (n, more) = try await log.recover(appKey: key, since: since, by: caller)
            return RecoveredBody(recovered: n, more: more)
        }
    }
}
