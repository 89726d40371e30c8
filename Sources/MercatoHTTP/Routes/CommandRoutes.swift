import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoStorage
import NIOCore

/// `POST /api/v1/apps/commands` (signed, no bearer token) and the command log listings.
struct CommandRoutes {
    let runtime: MercatoRuntime

    struct LogRow: Encodable, Sendable {
        let id: String
        let installId: String
        let appId: String
        let command: String
        let webhookId: String
        let bodySha256: String
        let outcome: String
        let httpStatus: Int
        let durationMs: Double
        let createdAt: Date

        init(_ r: CommandLogRecord) {
            id = r.id
            installId = r.installId
            appId = r.appId
            command = r.command
            webhookId = r.webhookId
            bodySha256 = r.bodySha256
            outcome = r.outcome
            httpStatus = r.httpStatus
            durationMs = Double(r.durationUs) / 1000
            createdAt = Timestamp.date(millis: r.createdAt)
        }
    }

    struct RateLimitBody: Decodable {
        let perSecond: Double
        let burst: Int
    }

    struct RateLimitAnswer: ResponseEncodable {
        let installId: String
        let perSecond: Double
        let burst: Int
    }

    /// The signed gateway, outside bearer authentication.
    func registerGateway(on router: Router<AppRequestContext>) {
        router.post("api/v1/apps/commands") { request, context -> Response in
            let answer: CommandGateway.Answer
            do {
                let body = try await request.collectBody(context: context, limit: CommandGateway.maxBodyBytes)
                answer = await runtime.gateway.handle(.init(
                    webhookID: request.headers[.webhookID], timestamp: request.headers[.webhookTimestamp],
                    signature: request.headers[.webhookSignature], body: Array(body.readableBytesView), requestID: context.requestID,
                    client: context.clientKey
                ))
            } catch let error as APIError where error.status == 413 {
                // Refused before reading: counted, and answered with headers, like any refusal before authentication.
                answer = runtime.gateway.refuseUnauthenticated(error, client: context.clientKey, requestID: context.requestID)
            }
            return AnswerResponse.gateway(answer)
        }
    }

    func registerLogs(on api: RouterGroup<AppRequestContext>) {
        typealias Lister = @Sendable (CommandLogService, String, Principal, CommandLogFilter, String?, Int) async throws -> ([CommandLogRecord], String?)
        let listings: [(path: String, parameter: String, list: Lister)] = [
            ("installs/{id}/commands", "id", { try await $0.forInstall($1, by: $2, filter: $3, cursor: $4, limit: $5) }),
            ("developer/apps/{key}/commands", "key", { try await $0.forApp($1, by: $2, filter: $3, cursor: $4, limit: $5) }),
        ]
        for listing in listings {
            api.get(RouterPath(listing.path)) { request, context in
                let page = try Pagination(request)
                let (rows, next) = try await listing.list(runtime.commandLog, try context.parameters.require(listing.parameter), try context.requirePrincipal(),
                                                          try CommandLogFilter(query: Self.query(request)), page.cursor, page.limit)
                return Page(data: rows.map(LogRow.init), nextCursor: next)
            }
        }
        api.put("installs/{id}/rate_limit") { request, context in
            let caller = try context.requirePrincipal()
            let id = try context.parameters.require("id")
            guard caller.isOperator else { throw APIError.forbidden("Only the operator can override rate limits.") }
            let body = try await request.decodeJSON(RateLimitBody.self, context: context)
            try await runtime.commandLog.setRateLimit(install: id, perSecond: body.perSecond, burst: body.burst, by: caller)
            return RateLimitAnswer(installId: id, perSecond: body.perSecond, burst: body.burst)
        }
    }

    static func query(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        for name in ["command", "outcome", "since", "until"] {
            if let v = request.uri.queryParameters[Substring(name)] { out[name] = String(v) }
        }
        return out
    }
}

extension HTTPField.Name {
    static let webhookID = Self("webhook-id")!
    static let webhookTimestamp = Self("webhook-timestamp")!
    static let webhookSignature = Self("webhook-signature")!
}
