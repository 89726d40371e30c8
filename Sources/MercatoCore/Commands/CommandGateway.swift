public import Foundation
public import Logging
import MercatoCrypto
public import MercatoHooks
public import MercatoStorage
import Metrics
import Synchronization

/// `POST /api/v1/apps/commands`: verifies a signed command and runs it, with the checks in the
/// contract's order (CONTRACT §4): size (HTTP layer), signature and timestamp, install active and
/// owned by the signing app, idempotency, rate limit, command known, scopes, args, handler.
///
/// ``handle(_:)`` runs the stages, each in its own file: ``authenticate(_:)``
/// (GatewayAuthenticate), ``confirm(_:claiming:)`` (GatewayConfirm), ``admit(_:reserved:)``
/// (GatewayAdmit), ``dispatch(_:)`` (GatewayDispatch), ``record(_:of:rate:since:)`` (GatewayRecord).
public final class CommandGateway: Sendable {
    public static let maxBodyBytes = 256 * 1024
    public static let timestampTolerance: Double = 300

    let database: Database
    let registry: RegistryService
    let host: PluginHost
    let api: any PluginAPI
    let secrets: SecretStore
    let clock: WallClock
    let logger: Logger
    let limiter = RateLimiter()
    /// Refusals before authentication, per client address (``Incoming/client``).
    let failures = RateLimiter()
    /// What a client address may spend on refusals before authentication: beyond it, 429.
    public let failureLimit: RateLimiter.Limit
    /// The stages' reads and writes: each command's check with its key's claim across nodes, its record.
    let steps: CommandSteps
    /// Install rates across nodes, on PostgreSQL (`nil` on SQLite: ``limiter`` is exact there).
    let sharedLimiter: SharedRateLimiter?
    /// How long a reservation holds a key if its node dies: well past any handler's timeout.
    let reservationLease: Int64
    let cache = GatewayCache()
    let commandsCounted = CounterFamily("mercato_commands_total", "outcome")
    let refusalsCounted = CounterFamily("mercato_commands_unauthenticated_total", "code")
    /// Keys (app, webhook-id) being answered in this process.
    let inFlight = Mutex<Set<String>>([])

    public init(database: Database, registry: RegistryService, host: PluginHost, api: any PluginAPI, secrets: SecretStore, clock: WallClock, logger: Logger,
                failureLimit: RateLimiter.Limit = RateLimiter.Limit(perSecond: 10, burst: 100)) {
        self.failureLimit = failureLimit
        self.database = database
        self.registry = registry
        self.host = host
        self.api = api
        self.secrets = secrets
        self.clock = clock
        self.logger = logger
        self.steps = CommandSteps(database: database)
        self.sharedLimiter = database.engine == .postgres ? SharedRateLimiter(database: database) : nil
        self.reservationLease = (host.commandTimeout * 2 + .seconds(5)).millis
    }

    /// A request as it arrived.
    public struct Incoming: Sendable {
        public var webhookID: String?
        public var timestamp: String?
        public var signature: String?
        public var body: [UInt8]
        public var requestID: String
        /// The caller's address (IPv4, or an IPv6 /64), whose refusals before authentication
        /// are limited together.
        public var client: String
        public init(webhookID: String?, timestamp: String?, signature: String?, body: [UInt8], requestID: String, client: String) {
            self.webhookID = webhookID
            self.timestamp = timestamp
            self.signature = signature
            self.body = body
            self.requestID = requestID
            self.client = client
        }
    }

    /// The answer: status, JSON body bytes, headers (problem answers have `isProblem`).
    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
        public var isProblem: Bool
        public var headers: [(String, String)]
        /// The stable outcome code (`succeeded` or the error code).
        public var outcome: String
    }

    /// What the gateway needs to know about the install and its app.
    struct Target: Sendable {
        var install: InstallRecord
        var orgName: String
        var plan: Plan
        var signing: AppManifest.CommandSigning
        var rate: RateLimiter.Limit
        var scopes: [String]
    }

    /// Runs the stages in the contract's order (CONTRACT §4); the size was checked by the HTTP
    /// layer. Each stage either hands the request on or answers it.
    public func handle(_ incoming: Incoming) async -> Answer {
        let start = ContinuousClock.now
        // Headers, body, signature and timestamp: a refusal here is unauthenticated (no log row).
        let signed: SignedRequest
        switch await authenticate(incoming) {
        case .answer(let answer): return answer
        case .next(let request): signed = request
        }
        // One request per (app, webhook-id) in this process until it is answered, taken before
        // the stored state is read so that no answer can commit between the two unseen.
        let appID = signed.entry.target.install.appId
        var key = ""
        key.reserveCapacity(appID.utf8.count + 1 + signed.webhookID.utf8.count)
        key += appID
        key += "\u{0}"
        key += signed.webhookID
        let reserved = inFlight.withLock { $0.insert(key).inserted }
        defer { if reserved { _ = inFlight.withLock { $0.remove(key) } } }
        // The install still there and as cached (else reload and verify again), its rate
        // override, the key's stored answer, and on PostgreSQL the key's claim across nodes:
        // one statement.
        let command: AuthenticatedCommand
        switch await confirm(signed, claiming: reserved && steps.claimsKeys) {
        case .answer(let answer): return answer
        case .next(let confirmed): command = confirmed
        }
        // Authenticated: from here every answer leaves a command-log row. Install active,
        // idempotency, rate limit; then command known, scopes, args and the handler.
        switch await admit(command, reserved: reserved) {
        case .answered(let verdict, let rate):
            return await record(verdict, of: command, rate: rate, since: start)
        case .admitted(let rate):
            return await record(await dispatch(command), of: command, rate: rate, since: start)
        }
    }

    /// A refusal before authentication (no log row, only a metric), or from the HTTP layer
    /// before the body is read (413): taken from the client address's allowance, which the
    /// `RateLimit-*` headers report; past it, 429 `rate_limited` instead.
    public func refuseUnauthenticated(_ error: APIError, client: String, requestID: String) -> Answer {
        let decision = failures.take(client, limit: failureLimit, now: clock.now().timeIntervalSince1970)
        var headers = Self.rateHeaders(decision)
        var error = error
        if !decision.allowed {
            error = APIError(status: 429, code: "rate_limited", title: "Rate limited",
                             detail: "Too many refused command requests from this address (at most \(failureLimit.burst), then \(Self.number(failureLimit.perSecond)) per second); retry after \(decision.retryAfterSeconds) s.")
            headers.append(("Retry-After", String(decision.retryAfterSeconds)))
        }
        refusalsCounted(error.code).increment()
        return problem(error, requestID: requestID, headers: headers)
    }

    /// What a stage before authentication ends with: the request handed on, or its answer.
    enum Stage<Value: Sendable>: Sendable {
        case next(Value)
        case answer(Answer)
    }

    /// An authenticated command's answer and what its record keeps (``record(_:of:rate:since:)``).
    struct Verdict: Sendable {
        var answer: Answer
        var keep: Keep
        /// The answer holds secrets: kept for replay only sealed to the install.
        var sealed = false
    }

    /// What an authenticated answer leaves in the idempotency store besides its log row.
    enum Keep: Sendable {
        /// Nothing: answered before the key was taken (install inactive, in progress) or from it;
        /// a claim taken on it is given back.
        case nothing
        /// The key and its body hash without an answer: a refusal before the handler (rate
        /// limit, command, scopes, args) or the plugin's "not now". The same body runs again
        /// later; another body under the key is an `idempotency_conflict`.
        case bodyHash
        /// The answer, replayed for the same key and body.
        case answer
    }

    // MARK: Helpers

    static func printable(_ name: String) -> String {
        if name.utf8.count <= 100, name.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) { return name }
        return String(String.UnicodeScalarView(name.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }).prefix(100))
    }

    /// A 503 for storage trouble: the rate-limit headers that apply, and a retry in a second.
    func unavailable(_ detail: String, requestID: String, rate: RateLimiter.Decision) -> Answer {
        problem(.unavailable(detail), requestID: requestID, headers: Self.rateHeaders(rate) + Self.retrySoon)
    }

    static let retrySoon = [("Retry-After", "1")]
    static let notRecorded = "The command could not be recorded; retry with the same webhook-id."

    func problem(_ error: APIError, requestID: String, headers: [(String, String)] = []) -> Answer {
        Answer(status: error.status, body: ProblemDocument.encode(error, requestID: requestID), isProblem: true, headers: headers, outcome: error.code)
    }

    static func missing(_ header: String, _ why: String = "is required") -> APIError {
        APIError(status: 400, code: "missing_header", title: "Missing or malformed header", detail: "The `\(header)` header \(why).")
    }

    /// A byte a `webhook-id` may hold (CONTRACT §4: `[A-Za-z0-9_.-]`).
    public static func isIDByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || b == 46 || b == 45
    }

    static func rateHeaders(_ d: RateLimiter.Decision) -> [(String, String)] {
        [("RateLimit-Limit", String(d.limit)), ("RateLimit-Remaining", String(d.remaining)), ("RateLimit-Reset", String(d.resetSeconds))]
    }

    static func number(_ n: Double) -> String { n.rounded() == n ? String(Int(n)) : String(n) }
}
