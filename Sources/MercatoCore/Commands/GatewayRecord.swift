import Foundation
import Logging
import MercatoCrypto
import MercatoStorage
import Metrics

/// The gateway's last stage: every answer to an authenticated command leaves its command-log
/// row (CONTRACT §4) and, as its verdict says, the key's idempotency record, committed before
/// the answer goes (``CommandSteps``: group commit); then the outcome is counted.
extension CommandGateway {
    /// Records `verdict` and answers it with the `RateLimit-*` headers of `rate`; a 503 when
    /// the record cannot be committed (the answer is not sent unrecorded).
    func record(_ verdict: Verdict, of command: AuthenticatedCommand, rate: RateLimiter.Decision, since start: ContinuousClock.Instant) async -> Answer {
        // A key kept nothing of is given back (a row kept for it replaces the claim instead).
        if verdict.keep == .nothing { await release(command.claim) }
        let rateHeaders = Self.rateHeaders(rate)
        let target = command.target
        var answer = verdict.answer
        answer.headers += rateHeaders
        let duration = (ContinuousClock.now - start).nanoseconds / 1000
        var kept = String(decoding: answer.body, as: UTF8.self)
        if verdict.keep == .answer && verdict.sealed {
            // An answer holding secrets is kept for replay only sealed to this install.
            guard let text = try? Self.sealAnswer(answer.body, webhookID: command.webhookID, install: target.install, secrets: secrets) else {
                return problem(.unavailable(Self.notRecorded), requestID: command.requestID, headers: rateHeaders + Self.retrySoon)
            }
            kept = text
        }
        let entry = CommandLogEntry(
            log: CommandLogRecord(id: command.id, installId: target.install.id, appId: target.install.appId, orgId: target.install.orgId,
                                  command: command.loggedName, webhookId: command.webhookID, bodySha256: command.bodyHash,
                                  outcome: answer.outcome, httpStatus: answer.status, durationUs: duration, createdAt: clock.millis),
            idempotency: verdict.keep == .nothing ? nil : IdempotencyRecord(appId: target.install.appId, webhookId: command.webhookID, bodySha256: command.bodyHash,
                                                                            httpStatus: verdict.keep == .answer ? answer.status : IdempotencyRecord.unanswered,
                                                                            response: verdict.keep == .answer ? kept : "", createdAt: clock.millis)
        )
        do {
            try await steps.record(entry)
        } catch {
            logger.error("command log row could not be committed", metadata: ["error_type": "\(type(of: error))"])
            return problem(.unavailable(Self.notRecorded), requestID: command.requestID, headers: rateHeaders + Self.retrySoon)
        }
        commandsCounted(answer.outcome).increment()
        return answer
    }

    /// Kept answers that hold secrets start with this, then base64 of the vault's bytes.
    static let sealedAnswerPrefix = "sealed:"

    static func answerContext(_ webhookID: String, install: InstallRecord) -> SealContext {
        SealContext(org: install.orgId, owner: install.id, purpose: "command.answer.\(webhookID)")
    }

    static func sealAnswer(_ body: Data, webhookID: String, install: InstallRecord, secrets: SecretStore) throws -> String {
        sealedAnswerPrefix + Data(try secrets.vault.seal(body, context: answerContext(webhookID, install: install))).base64EncodedString()
    }

    /// The kept answer's bytes; `nil` when a sealed one no longer opens.
    static func openAnswer(_ kept: String, webhookID: String, install: InstallRecord, secrets: SecretStore) -> Data? {
        guard kept.hasPrefix(sealedAnswerPrefix) else { return Data(kept.utf8) }
        guard let bytes = Data(base64Encoded: String(kept.dropFirst(sealedAnswerPrefix.count))),
              let body = try? secrets.vault.open(bytes, context: answerContext(webhookID, install: install)) else { return nil }
        return Data(body)
    }
}
