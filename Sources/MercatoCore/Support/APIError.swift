public import Foundation

/// An error a caller can act on: an HTTP status, a stable snake_case `code` from the contract,
/// and a sentence that says what went wrong. The HTTP layer renders it as RFC 9457 Problem
/// Details. It never carries secrets, SQL or stack traces.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let title: String
    public let detail: String
    /// Field-level problems, for validation failures.
    public let errors: [FieldProblem]
    /// Extra response headers (`Allow`, `Retry-After`).
    public let headers: [String: String]

    public init(status: Int, code: String, title: String, detail: String, errors: [FieldProblem] = [], headers: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public var description: String { "\(status) \(code): \(detail)" }

    /// One problem with one field of the request.
    public struct FieldProblem: Sendable, Equatable, Codable {
        public let field: String
        public let message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }
}

extension APIError {
    public static func unauthenticated(_ detail: String) -> APIError {
        APIError(status: 401, code: "unauthenticated", title: "Authentication required", detail: detail)
    }
    public static func forbidden(_ detail: String) -> APIError {
        APIError(status: 403, code: "forbidden", title: "Not allowed", detail: detail)
    }
    public static func notFound(_ what: String) -> APIError {
        APIError(status: 404, code: "not_found", title: "Not found", detail: "\(what) does not exist or is not visible to this token.")
    }
    public static func invalidRequest(_ detail: String, errors: [FieldProblem] = []) -> APIError {
        APIError(status: 422, code: "invalid_request", title: "Invalid request", detail: detail, errors: errors)
    }
    /// A validation failure naming every field: `detail` lists them all in one sentence.
    public static func fieldProblems(_ problems: [FieldProblem], status: Int = 422, code: String = "invalid_request",
                                     title: String = "Invalid request", lead: String = "") -> APIError {
        APIError(status: status, code: code, title: title,
                 detail: lead + problems.map { "`\($0.field)` \($0.message)" }.joined(separator: "; ") + ".", errors: problems)
    }

    public static func malformedJSON(_ detail: String) -> APIError {
        APIError(status: 400, code: "malformed_json", title: "Malformed JSON", detail: detail)
    }
    public static func unavailable(_ detail: String) -> APIError {
        APIError(status: 503, code: "storage_unavailable", title: "Service unavailable", detail: detail)
    }
    public static func internalError() -> APIError {
        APIError(status: 500, code: "internal_error", title: "Internal error", detail: "The server failed to answer this request; it has been logged with the request id.")
    }
}

/// An RFC 3339 time from a query or body field; 422 naming the field otherwise.
public enum RFC3339Field {
    public static func parse(_ text: String?, field: String) throws -> Date? {
        guard let text, !text.isEmpty else { return nil }
        guard let date = try? Date(text, strategy: .iso8601) else {
            throw APIError.invalidRequest("`\(field)` must be an RFC 3339 time such as 2026-11-21T10:00:00Z.", errors: [.init(field: field, message: "is not RFC 3339")])
        }
        return date
    }
}
