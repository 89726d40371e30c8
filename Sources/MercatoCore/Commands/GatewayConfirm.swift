import MercatoCrypto
import MercatoHooks
import MercatoStorage

/// The gateway's second stage: the stored state a signed request is judged on, read in one
/// statement (``CommandStore/check(install:webhookID:in:)``): the install's stamp, its rate
/// override, and the stored answer of the request's idempotency key. A stamp that moved since
/// the entry was loaded (a change on any node) reloads it and verifies the signature again, so a
/// rotated-out secret or a new key counts at once. The request is authenticated when this passes.
extension CommandGateway {
    /// A command whose signature holds against its install's current state: what the later
    /// stages judge and what its log row names.
    struct AuthenticatedCommand: Sendable {
        /// `cmd_…`: the log row's id, and the answer's on success.
        var id: String
        var webhookID: String
        var requestID: String
        /// The install's facts, with its rate override applied.
        var target: Target
        /// The key's stored record (an answer, or only the body it was first used with).
        var stored: IdempotencyRecord?
        /// The body's `command` (`""` when absent or not a string).
        var name: String
        /// The name as the log keeps it: printable text only.
        var loggedName: String
        /// The body's `args` as sent.
        var args: JSONValue?
        /// SHA-256 of the raw body: what binds the idempotency key.
        var bodyHash: String
        /// The server's time when the request was judged (Unix seconds).
        var now: Double
    }

    /// Reads the stored state and confirms the signed request against it. A refusal here is
    /// still unauthenticated (no log row); storage trouble is a 503 with the install's rate.
    func confirm(_ request: SignedRequest) async -> Stage<AuthenticatedCommand> {
        func reject(_ error: APIError) -> Stage<AuthenticatedCommand> {
            .answer(refuseUnauthenticated(error, client: request.client, requestID: request.requestID))
        }
        let check: CommandCheck
        var entry = request.entry
        do {
            let key = CommandStore.CheckKey(install: request.installID, webhookID: request.webhookID)
            guard let found = try await steps.check(key) else {
                cache.remove(request.installID)
                return reject(Self.unverifiable)
            }
            check = found
            if check.stamp != entry.stamp {
                // Changed since the entry was loaded (here or on another node): reload, and verify
                // again, so a rotated-out secret or a new signing key counts at once.
                guard let loaded = try await load(request.installID) else { return reject(Self.unverifiable) }
                entry = loaded
                guard verifies(request.signature, content: request.content, with: entry) else { return reject(Self.signatureMismatch) }
            }
        } catch {
            return .answer(unavailable("Storage is unavailable; retry with the same webhook-id.", requestID: request.requestID,
                                       rate: limiter.peek(request.entry.target.install.id, limit: request.entry.target.rate, now: request.now)))
        }
        var target = entry.target
        if let perSecond = check.ratePerSecond, let burst = check.rateBurst {
            target.rate = RateLimiter.Limit(perSecond: perSecond, burst: burst)
        }
        let name = request.body.command ?? ""
        return .next(AuthenticatedCommand(id: RecordID.make("cmd", millis: clock.millis), webhookID: request.webhookID, requestID: request.requestID,
                                          target: target, stored: check.idempotency, name: name, loggedName: Self.printable(name),
                                          args: request.body.args, bodyHash: Signatures.sha256Hex(request.bytes), now: request.now))
    }
}
