import Foundation
import Logging
import MercatoStorage

/// The gateway's third stage, the first of an authenticated command (CONTRACT §4): install
/// active, idempotency (in progress, another body, a stored answer to replay), rate limit.
extension CommandGateway {
    /// What admission decides, with the rate whose `RateLimit-*` headers the answer carries.
    enum Admission: Sendable {
        /// Answered here, recorded as the verdict says.
        case answered(Verdict, rate: RateLimiter.Decision)
        /// On to dispatch: the rate was taken.
        case admitted(rate: RateLimiter.Decision)
    }

    /// Judges `command` in order; `reserved` says whether this request holds its key in process
    /// (another one with the same key is running here otherwise).
    func admit(_ command: AuthenticatedCommand, reserved: Bool) async -> Admission {
        let target = command.target
        // Refusals before the rate is taken report the install's allowance as it stands.
        let allowance = limiter.peek(target.install.id, limit: target.rate, now: command.now)
        func refuse(_ error: APIError, headers: [(String, String)] = [], keep: Keep) -> Admission {
            .answered(Verdict(answer: problem(error, requestID: command.requestID, headers: headers), keep: keep), rate: allowance)
        }
        if target.install.status == .uninstalled {
            return refuse(APIError(status: 404, code: "unknown_install", title: "Unknown install",
                                   detail: "Install \(target.install.id) was uninstalled; the org must install the app again."), keep: .nothing)
        }
        guard target.install.status == .active || target.install.status == .pendingOAuth else {
            return refuse(APIError(status: 403, code: "install_inactive", title: "Install inactive",
                                   detail: "Install \(target.install.id) is \(target.install.status.rawValue); an admin must enable it."), keep: .nothing)
        }
        guard reserved else {
            return refuse(APIError(status: 409, code: "idempotency_in_progress", title: "Request in progress",
                                   detail: "A request with this webhook-id is still running; retry after it answers."), keep: .nothing)
        }
        if let stored = command.stored {
            // An authenticated key is bound to its body from its first use, answered or not.
            guard stored.bodySha256 == command.bodyHash else {
                return refuse(APIError(status: 409, code: "idempotency_conflict", title: "Idempotency key reused",
                                       detail: "This webhook-id was used with a different body; use a new webhook-id for a new command."), keep: .nothing)
            }
            if stored.httpStatus != IdempotencyRecord.unanswered {
                guard let body = Self.openAnswer(stored.response, webhookID: command.webhookID, install: target.install, secrets: secrets) else {
                    return refuse(APIError(status: 409, code: "stored_answer_unreadable", title: "Stored answer unreadable",
                                           detail: "The answer kept for this webhook-id can no longer be opened (its key was retired); send the command again with a new webhook-id."),
                                  keep: .nothing)
                }
                let replay = Answer(status: stored.httpStatus, body: body, isProblem: stored.httpStatus >= 400,
                                    headers: [("Idempotent-Replayed", "true")], outcome: "replayed")
                return .answered(Verdict(answer: replay, keep: .nothing), rate: allowance)
            }
        }
        if case .refused = command.claim {
            return refuse(APIError(status: 409, code: "idempotency_in_progress", title: "Request in progress",
                                   detail: "A request with this webhook-id is running or was answered on another node; retry to get its answer."), keep: .nothing)
        }
        let decision: RateLimiter.Decision
        if let sharedLimiter {
            do {
                decision = try await sharedLimiter.take(target.install.id, limit: target.rate, now: command.now)
            } catch {
                logger.error("shared rate state could not be read", metadata: ["error_type": "\(type(of: error))"])
                return refuse(.unavailable("Storage is unavailable; retry with the same webhook-id."), headers: Self.retrySoon, keep: .nothing)
            }
        } else {
            decision = limiter.take(target.install.id, limit: target.rate, now: command.now)
        }
        guard decision.allowed else {
            return .answered(Verdict(answer: problem(APIError(status: 429, code: "rate_limited", title: "Rate limited",
                                                              detail: "This install may send \(Self.number(target.rate.perSecond)) commands per second (burst \(target.rate.burst)); retry after \(decision.retryAfterSeconds) s."),
                                                     requestID: command.requestID, headers: [("Retry-After", String(decision.retryAfterSeconds))]),
                                     keep: .bodyHash),
                             rate: decision)
        }
        return .admitted(rate: decision)
    }
}
