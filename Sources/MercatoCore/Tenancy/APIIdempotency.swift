public import Foundation
public import MercatoCrypto
public import MercatoStorage

/// `Idempotency-Key` on the management API's POSTs (CONTRACT §9): the same key and body from the
/// same caller within 24 hours gets the first answer again; another body 409
/// `idempotency_conflict`; a copy while the first runs 409 `idempotency_in_progress`. Answers
/// are kept sealed with the vault (they can hold a token's text or an app's secrets), bound to
/// the caller and the key, and only 2xx and 4xx ones (a 5xx frees the key for a retry).
///
/// The first request holds its key by a lease its node renews while the request runs
/// (``holding(_:while:)``), so a key left unanswered by a node that stopped (killed, or storage
/// failing it both at its change's COMMIT and at keeping the answer) is told apart from one still
/// running: its retry hears that the outcome is unknown, not "retry in a moment" for 24 hours.
/// The key is not run again: the first request may have been applied.
public struct APIIdempotency: Sendable {
    let database: Database
    let vault: Vault
    let clock: WallClock
    /// How long a hold lasts unless renewed; renewed every third of it.
    let leaseMillis: Int64
    /// How long a key holds (the contract's 24 hours); `RetentionService` sweeps older rows.
    public static let keepMillis: Int64 = 24 * 3_600_000

    public init(database: Database, vault: Vault, clock: WallClock, leaseMillis: Int64 = 30_000) {
        self.database = database
        self.vault = vault
        self.clock = clock
        self.leaseMillis = leaseMillis
    }

    /// The first request's answer as kept.
    public struct KeptAnswer: Sendable, Codable, Equatable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data

        public init(status: Int, headers: [String: String], body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    public enum Outcome: Sendable, Equatable {
        /// This request is the first with the key: run it, then ``keep(_:for:)`` or ``release(_:)``.
        case first
        case replay(KeptAnswer)
        case conflict
        case inProgress
        /// The first request's node stopped holding the key without keeping an answer: the
        /// request may have been applied. Since when (Unix milliseconds).
        case outcomeUnknown(since: Int64)
    }

    /// Whom and which key a request is about; `org` chooses the sealing key (the platform's for the operator).
    public struct Claim: Sendable {
        public var scope: String
        public var org: String?
        public var key: String
        public var fingerprint: String

        public init(scope: String, org: String?, key: String, fingerprint: String) {
            self.scope = scope
            self.org = org
            self.key = key
            self.fingerprint = fingerprint
        }

        var sealContext: SealContext {
            SealContext(org: org ?? SealContext.platformOrg, owner: scope, purpose: "idempotent_answer:" + key)
        }
    }

    public func begin(_ claim: Claim) async throws -> Outcome {
        let now = clock.millis
        let (reserved, record) = try await database.transaction { db -> (Bool, APIIdempotencyRecord?) in
            if try await APIIdempotencyStore.reserve(scope: claim.scope, key: claim.key, fingerprint: claim.fingerprint, at: now,
                                                     until: now + leaseMillis, staleBefore: now - Self.keepMillis, on: db) {
                return (true, nil)
            }
            return (false, try await APIIdempotencyStore.find(scope: claim.scope, key: claim.key, on: db))
        }
        if reserved { return .first }
        guard let record else { return .inProgress }
        guard record.fingerprint == claim.fingerprint else { return .conflict }
        guard record.status != nil, let sealed = record.answer, let bytes = Data(base64Encoded: sealed) else {
            // 0: reserved by a node of a version before leases (a rolling upgrade), which does
            // not renew: its hold counts one lease from the reservation.
            let until = record.reservedUntil > 0 ? record.reservedUntil : record.createdAt + leaseMillis
            return until < now ? .outcomeUnknown(since: until) : .inProgress
        }
        let plain = try vault.open(bytes, context: claim.sealContext)
        return .replay(try JSONDecoder().decode(KeptAnswer.self, from: Data(plain)))
    }

    /// Runs the first request (`.first` from ``begin(_:)``), renewing its hold on the key until
    /// it returns. A renewal storage refuses is tried again at the next turn. The renewals run in
    /// a task of their own that the answer does not wait for: one caught in a slow storage when
    /// the request ends would otherwise hold the answer back; late, it changes nothing (it only
    /// extends a key that is still unanswered).
    public func holding<T>(_ claim: Claim, while request: () async throws -> T) async throws -> T {
        let renewals = Task { [self] in
            while true {
                try? await Task.sleep(for: .milliseconds(leaseMillis / 3))
                if Task.isCancelled { return }
                let until = clock.millis + leaseMillis
                try? await database.transaction { try await APIIdempotencyStore.renew(scope: claim.scope, key: claim.key, until: until, on: $0) }
            }
        }
        defer { renewals.cancel() }
        return try await request()
    }

    /// Keeps the first request's answer, sealed.
    public func keep(_ answer: KeptAnswer, for claim: Claim) async throws {
        let sealed = Data(try vault.seal(try JSONEncoder().encode(answer), context: claim.sealContext)).base64EncodedString()
        try await database.transaction { db in
            try await APIIdempotencyStore.finish(scope: claim.scope, key: claim.key, status: answer.status, answer: sealed, on: db)
        }
    }

    /// Frees the key after a 5xx: the client may send the request again.
    public func release(_ claim: Claim) async throws {
        try await database.transaction { try await APIIdempotencyStore.release(scope: claim.scope, key: claim.key, on: $0) }
    }
}
