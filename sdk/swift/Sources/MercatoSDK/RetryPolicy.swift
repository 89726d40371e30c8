public import Foundation

/// When and how often ``MercatoClient`` sends a command again.
///
/// A resend carries the same `webhook-id` and the same body bytes, so the server runs the handler
/// at most once and answers a repeat with the stored answer (`Idempotent-Replayed: true`).
/// Retried: network failures, 5xx answers (unless replayed from storage), 429 `rate_limited`
/// and 409 `idempotency_in_progress` (the first request is still running).
public struct RetryPolicy: Sendable, Hashable {
    /// Requests in all, the first one included (1 means no retry).
    public var maxAttempts: Int
    /// The wait before the first retry; it doubles each time, with jitter, up to ``maxDelay``.
    public var initialDelay: TimeInterval
    /// The longest wait the backoff reaches.
    public var maxDelay: TimeInterval
    /// The longest `Retry-After` honoured; an answer asking for more is thrown instead of waited for.
    public var maxRetryAfter: TimeInterval
    /// Each request's timeout.
    public var requestTimeout: TimeInterval

    /// A policy; out-of-range values are clamped (at least one attempt, no negative waits).
    public init(maxAttempts: Int = 4, initialDelay: TimeInterval = 0.5, maxDelay: TimeInterval = 8,
                maxRetryAfter: TimeInterval = 30, requestTimeout: TimeInterval = 30) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = max(0, initialDelay)
        self.maxDelay = max(0, maxDelay)
        self.maxRetryAfter = max(0, maxRetryAfter)
        self.requestTimeout = max(0.001, requestTimeout)
    }

    /// 4 attempts, 0.5 s doubling to 8 s, `Retry-After` up to 30 s, 30 s per request.
    public static let `default` = RetryPolicy()
    /// One attempt, no retry.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait before retry number `retry` (1 for the first): exponential, between half and all of it.
    func backoff(retry: Int) -> TimeInterval {
        let full = min(maxDelay, initialDelay * pow(2, Double(max(0, retry - 1))))
        return full / 2 + Double.random(in: 0...(full / 2))
    }
}
