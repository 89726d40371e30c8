import Logging
import MercatoCrypto
import MercatoHooks
import MercatoStorage

/// The gateway's second stage: the stored state a signed request is judged on, read in one
/// statement (``CommandStore/check(install:webhookID:in:)``): the install's stamp, its rate
/// override, and the stored answer of the request's idempotency key; on PostgreSQL the same
/// statement claims the key across nodes (``KeyClaim``). A stamp that moved since the entry was
/// loaded (a change on any node) reloads it and verifies the signature again, so a rotated-out
/// secret or a new key counts at once. The request is authenticated when this passes.
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
        /// The key's claim in storage, taken with the check.
        var claim: KeyClaim
        /// The server's time when the request was judged (Unix seconds).
        var now: Double
    }

    /// A command's claim on its idempotency key in storage, which other nodes respect
    /// (CONTRACT §12: a handler runs at most once per key across nodes).
    enum KeyClaim: Sendable {
        /// None taken: one process serves (SQLite), or another request with this key runs here.
        case none
        /// Held until the command's record answers the key or ``release(_:)`` gives it back.
        case held(CommandStore.Reservation, newRow: Bool)
        /// Another node holds the key, or answered it since the check read it.
        case refused
    }

    /// Reads the stored state and confirms the signed request against it; with `claiming`
    /// (PostgreSQL, and the key held in this process) the same statement claims the key. A
    /// refusal here is still unauthenticated (no log row) and gives the claim back; storage
    /// trouble is a 503 with the install's rate.
    func confirm(_ request: SignedRequest, claiming: Bool) async -> Stage<AuthenticatedCommand> {
        var claim = KeyClaim.none
        func reject(_ error: APIError) async -> Stage<AuthenticatedCommand> {
            await release(claim)
            return .answer(refuseUnauthenticated(error, client: request.client, requestID: request.requestID))
        }
        let check: CommandCheck
        var entry = request.entry
        let bodyHash = Signatures.sha256Hex(request.bytes)
        do {
            let key = CommandStore.CheckKey(install: request.installID, webhookID: request.webhookID)
            let now = clock.millis
            let reservation = claiming ? CommandStore.Reservation(appId: entry.target.install.appId, webhookId: request.webhookID, bodySha256: bodyHash,
                                                                   until: now + reservationLease, now: now) : nil
            let (found, taken) = try await steps.check(key, reserving: reservation)
            switch (reservation, taken) {
            case (let reservation?, .taken(let newRow)?): claim = .held(reservation, newRow: newRow)
            case (_?, _): claim = .refused
            default: break
            }
            guard let found else {
                cache.remove(request.installID)
                return await reject(Self.unverifiable)
            }
            check = found
            if check.stamp != entry.stamp {
                // Changed since the entry was loaded (here or on another node): reload, and verify
                // again, so a rotated-out secret or a new signing key counts at once.
                guard let loaded = try await load(request.installID) else { return await reject(Self.unverifiable) }
                entry = loaded
                guard verifies(request.signature, content: request.content, with: entry) else { return await reject(Self.signatureMismatch) }
            }
        } catch {
            await release(claim)
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
                                          args: request.body.args, bodyHash: bodyHash, claim: claim, now: request.now))
    }

    /// Gives back a key claimed and not to be answered, so that a retry runs instead of being
    /// told the key is in progress; if storage fails here, the key frees itself when its lease
    /// runs out.
    func release(_ claim: KeyClaim) async {
        guard case .held(let reservation, let newRow) = claim else { return }
        do {
            try await steps.release(reservation, newRow: newRow)
        } catch {
            logger.error("idempotency reservation could not be released; it lapses with its lease", metadata: ["error_type": "\(type(of: error))"])
        }
    }
}
