/// A command's successful answer.
public struct CommandResult: Sendable {
    /// The HTTP status (200).
    public let status: Int
    /// The whole answer: `{"id": "cmd_...", "command": "...", "status": "succeeded", "result": {...}}`.
    public let json: JSONValue
    /// `true` when the server answered with the stored answer of an earlier request with the
    /// same `webhook-id` (`Idempotent-Replayed: true`): the handler did not run again.
    public let replayed: Bool
    /// The install's rate-limit state after this request.
    public let rateLimit: RateLimit?
    /// The server's `X-Request-Id`.
    public let requestID: String?
    /// The `webhook-id` it was sent with (generated unless the caller gave one).
    public let webhookID: String
    /// How many requests were sent (more than 1 after retries).
    public let attempts: Int

    /// The command's `result` member.
    public var result: JSONValue { json["result"] ?? .null }
    /// The command log id (`cmd_...`).
    public var commandID: String? { json["id"]?.stringValue }
}

/// The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers of an answer.
public struct RateLimit: Sendable, Hashable {
    /// Requests allowed in the window (the burst).
    public let limit: Int
    /// Requests left now.
    public let remaining: Int
    /// Seconds until the limit is whole again.
    public let reset: Int

    /// The three header values.
    public init(limit: Int, remaining: Int, reset: Int) {
        self.limit = limit
        self.remaining = remaining
        self.reset = reset
    }
}
