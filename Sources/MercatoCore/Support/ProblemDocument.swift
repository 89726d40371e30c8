public import Foundation

/// RFC 9457 Problem Details for an ``APIError``: `type`, `title`, `status`, `detail`, plus the
/// `code` and `request_id` extensions (and `errors` for field-level problems). Rendered here
/// so that stored answers (idempotency replays) and live answers are the same bytes.
public enum ProblemDocument {
    private struct Body: Encodable {
        let type: String
        let title: String
        let status: Int
        let detail: String
        let code: String
        let request_id: String
        let errors: [APIError.FieldProblem]?
    }

    /// The `type` URI of a code; docs/errors.md describes each.
    public static func typeURI(_ code: String) -> String { "urn:mercato:problem:\(code)" }

    public static func encode(_ error: APIError, requestID: String) -> Data {
        let body = Body(type: typeURI(error.code), title: error.title, status: error.status, detail: error.detail,
                        code: error.code, request_id: requestID, errors: error.errors.isEmpty ? nil : error.errors)
        return (try? JSONCoding.verbatim.encode(body)) ?? Data("{\"code\":\"internal_error\"}".utf8)
    }
}
