import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import NIOCore

/// RFC 9457 Problem Details for an ``APIError``: `type`, `title`, `status`, `detail`, plus the
/// `code` and `request_id` extensions (and `errors` for field-level problems).
enum ProblemResponse {
    static func make(_ error: APIError, requestID: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        headers[.cacheControl] = "no-store"
        for (name, value) in error.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: error.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: ProblemDocument.encode(error, requestID: requestID)))
        )
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
