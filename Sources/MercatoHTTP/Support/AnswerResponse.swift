import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import NIOCore

/// The one renderer of the answers Mercato encodes itself: Problem Details for every
/// ``APIError`` (thrown anywhere, caught by the middleware) and the signed gateway's answers
/// (live, or stored for an idempotent replay). Each gets its content type, `Cache-Control:
/// no-store` (an answer can hold a secret the app asked for) and its own extra headers.
enum AnswerResponse {
    static func make(status: Int, isProblem: Bool, headers extra: some Sequence<(String, String)>, body: Data) -> Response {
        var headers = HTTPFields()
        // Room for the two below, the extras and the two every answer gets (``RequestMiddleware``).
        headers.reserveCapacity(extra.underestimatedCount + 4)
        headers[.contentType] = isProblem ? "application/problem+json" : "application/json"
        headers[.cacheControl] = "no-store"
        for (name, value) in extra {
            if let field = fieldName(name) { headers[field] = value }
        }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The names the gateway answers with on every command, made once; any other is parsed.
    static func fieldName(_ name: String) -> HTTPField.Name? {
        switch name {
        case "RateLimit-Limit": .rateLimitLimit
        case "RateLimit-Remaining": .rateLimitRemaining
        case "RateLimit-Reset": .rateLimitReset
        default: HTTPField.Name(name)
        }
    }

    /// RFC 9457 Problem Details for `error`: `type`, `title`, `status`, `detail`, plus the
    /// `code` and `request_id` extensions (and `errors` for field-level problems).
    static func problem(_ error: APIError, requestID: String) -> Response {
        make(status: error.status, isProblem: true, headers: error.headers.map { ($0.key, $0.value) },
             body: ProblemDocument.encode(error, requestID: requestID))
    }

    /// An answer of the signed command gateway.
    static func gateway(_ answer: CommandGateway.Answer) -> Response {
        make(status: answer.status, isProblem: answer.isProblem, headers: answer.headers, body: answer.body)
    }
}

extension APIError {
    /// The problem for an error thrown by Hummingbird itself (routing, body limits).
    static func from(httpStatus status: HTTPResponse.Status, message: String?) -> APIError {
        switch status.code {
        case 404:
            APIError(status: 404, code: "route_not_found", title: "No such route", detail: "No route matches this path. See GET /api/v1/openapi.json for the API.")
        case 413:
            APIError(status: 413, code: "payload_too_large", title: "Payload too large", detail: "The request body is larger than this route accepts.")
        case 400:
            APIError(status: 400, code: "bad_request", title: "Bad request", detail: message ?? "The request could not be read.")
        case 415:
            APIError(status: 415, code: "unsupported_media_type", title: "Unsupported media type", detail: message ?? "This content type is not accepted here.")
        default:
            APIError(status: Int(status.code), code: "http_\(status.code)", title: status.reasonPhrase, detail: message ?? status.reasonPhrase)
        }
    }
}

extension HTTPField.Name {
    static let rateLimitLimit = Self("RateLimit-Limit")!
    static let rateLimitRemaining = Self("RateLimit-Remaining")!
    static let rateLimitReset = Self("RateLimit-Reset")!
}
