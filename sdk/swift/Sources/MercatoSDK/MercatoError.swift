public import Foundation

/// The server refused a command: its RFC 9457 Problem Details answer.
///
/// ``code`` is the contract's stable string (`invalid_signature`, `scope_missing`, `rate_limited`,
/// `idempotency_conflict`, ...): switch on it, not on ``detail``, which is for people.
public struct MercatoError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status (401, 403, 409, 429, 503, ...).
    public let status: Int
    /// The stable error code; `http_<status>` when the answer was not Problem+JSON.
    public let code: String
    /// The problem's short title.
    public let title: String?
    /// What went wrong, for people (e.g. the scopes that are missing, the invalid field).
    public let detail: String?
    /// The problem's `type` URI.
    public let type: String?
    /// The server's request id (`request_id`, else `X-Request-Id`): quote it when asking for help.
    public let requestID: String?
    /// The `webhook-id` the command was sent with.
    public let webhookID: String
    /// `Retry-After` in seconds, when the answer had one (429, 503).
    public let retryAfter: TimeInterval?
    /// The install's rate-limit state after this request, when the answer carried it.
    public let rateLimit: RateLimit?
    /// `true` when this is the stored answer of an earlier request with the same `webhook-id`.
    public let replayed: Bool
    /// How many requests were sent (more than 1 after retries).
    public let attempts: Int
    /// The whole answer body as JSON (`.null` when it was not JSON).
    public let body: JSONValue

    public var description: String {
        var text = "Mercato answered \(status) \(code)"
        if let detail { text += ": \(detail)" }
        if let requestID { text += " (request \(requestID))" }
        return text
    }
}

extension MercatoError: LocalizedError {
    public var errorDescription: String? { description }
}

/// The SDK could not get an answer it understands: a bad argument before anything was sent,
/// a network failure after the last retry, or an answer that is not what the contract says.
public struct MercatoClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public enum Kind: String, Sendable, Hashable {
        /// An argument cannot be sent: an invalid `webhook-id`, a NaN in the args.
        case invalidArgument = "invalid_argument"
        /// No answer: connection refused or reset, timeout, DNS. Retried before it is thrown.
        case transport = "transport"
        /// A success answer whose body is not a JSON object.
        case invalidResponse = "invalid_response"
    }

    /// What kind of failure.
    public let kind: Kind
    /// What happened, for people.
    public let detail: String
    /// The `webhook-id` of the command, when one was chosen: resend with it to stay idempotent.
    public let webhookID: String?
    /// How many requests were sent.
    public let attempts: Int

    init(_ kind: Kind, detail: String, webhookID: String? = nil, attempts: Int = 0) {
        self.kind = kind
        self.detail = detail
        self.webhookID = webhookID
        self.attempts = attempts
    }

    public var description: String {
        var text = "Mercato SDK \(kind.rawValue): \(detail)"
        if let webhookID { text += " (webhook-id \(webhookID), \(attempts) attempt\(attempts == 1 ? "" : "s"))" }
        return text
    }
}

extension MercatoClientError: LocalizedError {
    public var errorDescription: String? { description }
}
