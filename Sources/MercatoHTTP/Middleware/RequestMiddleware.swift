import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MercatoCore
import MercatoCrypto
import MercatoStorage
import Metrics

/// The outermost middleware: gives every request an id (echoing a safe `X-Request-Id`), turns
/// every error into Problem Details, writes one log line per request (method, route, status,
/// duration, request id; never headers or bodies) and counts requests in metrics.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let logger: Logger
    let routes: RouteTable
    /// API tokens' usage log (a row per token-authenticated request, written in batches).
    let usage: TokenUsageLog
    let requestsCounted = CounterFamily("mercato_http_requests_total", "method", "route", "status")
    let requestsTimed = TimerFamily("mercato_http_request_duration_seconds", "route")
    /// The logger's handler when it is Mercato's: the request line is then written without a
    /// metadata dictionary (``JSONLogHandler/logRequest(_:)``).
    let lineWriter: JSONLogHandler?

    init(logger: Logger, routes: RouteTable, usage: TokenUsageLog) {
        self.logger = logger
        self.routes = routes
        self.usage = usage
        self.lineWriter = logger.handler as? JSONLogHandler
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        let requestID = Self.acceptedRequestID(request.headers[.xRequestID]) ?? RecordID.make("req")
        context.requestID = requestID
        // Only a request with a token can be noted (signed commands and pages carry none).
        let tokenUse = request.headers[.authorization] == nil ? nil : TokenUse()
        context.tokenUse = tokenUse

        var response: Response
        var failure: (any Error)?
        do {
            response = try await next(request, context)
        } catch {
            failure = error
            response = AnswerResponse.problem(Self.problem(for: error, request: request, routes: routes), requestID: requestID)
        }
        response.headers[.xRequestID] = requestID
        // Every API answer, errors and unmatched paths included (CONTRACT §9); pages need none.
        if request.uri.path.hasPrefix("/api/") { response.headers[.mercatoAPIVersion] = "1" }

        let elapsed = ContinuousClock.now - start
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        let route = context.endpointPath ?? "unmatched"
        let status = Int(response.status.code)
        if let noted = tokenUse?.noted {
            // Every answer to a token-authenticated request, whatever it is (CONTRACT §9).
            for (name, value) in noted.headers { if let field = AnswerResponse.fieldName(name) { response.headers[field] = value } }
            usage.record(TokenUsageRecord(id: RecordID.make("tku"), tokenId: noted.tokenID, at: Timestamp.nowMillis(), method: request.method.rawValue,
                                          path: context.endpointPath ?? String(request.uri.path.prefix(500)), status: status, requestId: requestID))
        }
        let line = JSONLogHandler.RequestLine(method: request.method.rawValue, route: route, status: status,
                                              durationMilliseconds: Double(nanoseconds / 1000) / 1000, requestID: requestID)
        if status >= 500, let failure {
            var metadata = line.metadata
            metadata["error_type"] = .string(String(reflecting: type(of: failure)))
            metadata["error"] = .string(String(describing: failure).prefix(500).description)
            logger.error("request failed", metadata: metadata)
        } else if !(lineWriter?.logRequest(line) ?? false) {
            logger.info("request", metadata: line.metadata)
        }
        requestsCounted(request.method.rawValue, route, String(status)).increment()
        requestsTimed(route).recordNanoseconds(nanoseconds)
        return response
    }

    /// The Problem Details an error is answered with (also ``IdempotencyMiddleware``'s, to keep a 4xx).
    static func problem(for error: any Error, request: Request, routes: RouteTable) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as HTTPError:
            if error.status == .notFound {
                let allowed = routes.methods(matching: request.uri.path)
                if !allowed.isEmpty {
                    let allow = Set(allowed.map(\.rawValue)).sorted().joined(separator: ", ")
                    return APIError(status: 405, code: "method_not_allowed", title: "Method not allowed",
                                    detail: "\(request.method.rawValue) is not allowed on this path; use \(allow).", headers: ["Allow": allow])
                }
            }
            return .from(httpStatus: error.status, message: error.body)
        case let error as DecodingError:
            return JSONBody.problem(for: error)
        case let error as StorageUnavailable where error.outcomeUnknown:
            // The change's COMMIT went out and no answer came: it may have been applied.
            return APIError(status: 503, code: "storage_unavailable", title: "Service unavailable",
                            detail: "Storage stopped answering while it saved this change, which may have been applied: check before "
                                + "sending it again (a signed command: send it again with the same webhook-id, which answers what happened).",
                            headers: ["Retry-After": "1"])
        case is StorageUnavailable:
            // PostgreSQL unreachable (restarting, failing over): the transaction that failed was
            // rolled back; send it again.
            return APIError(status: 503, code: "storage_unavailable", title: "Service unavailable",
                            detail: "Storage is unavailable for the moment; retry the request.", headers: ["Retry-After": "1"])
        case is VaultError:
            // Stored data failed authentication (tampered, or copied between rows): say so without
            // saying anything about the value.
            return APIError(status: 500, code: "sealed_value_unreadable", title: "Stored secret unreadable",
                            detail: "A value stored for this resource failed its integrity check; the operator has been told through the logs.")
        default:
            return .internalError()
        }
    }

    /// A client's request id is echoed when it is 1-128 characters of `[A-Za-z0-9._:-]`.
    static func acceptedRequestID(_ value: String?) -> String? {
        guard let value, (1 ... 128).contains(value.utf8.count),
              value.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 46 || $0 == 95 || $0 == 58 })
        else { return nil }
        return value
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
    static let mercatoAPIVersion = Self("Mercato-API-Version")!
}
