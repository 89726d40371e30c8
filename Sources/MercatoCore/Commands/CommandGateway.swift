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
    let batcher: CommandBatcher
    /// Reservations of keys across nodes, on PostgreSQL (`nil` on SQLite: one process serves).
    let reservations: ReservationBatcher?
    /// Install rates across nodes, on PostgreSQL (`nil` on SQLite: ``limiter`` is exact there).
    let sharedLimiter: SharedRateLimiter?
    /// How long a reservation holds a key if its node dies: well past any handler's timeout.
    let reservationLease: Int64
    let cache = GatewayCache()
    let metrics = MetricHandles()
    private let inFlight = Mutex<Set<String>>([])

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
        self.batcher = CommandBatcher(commandLogOn: database)
        self.reservations = database.engine == .postgres ? ReservationBatcher(reservationsOn: database) : nil
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

    public func handle(_ incoming: Incoming) async -> Answer {
        let start = ContinuousClock.now
        func reject(_ error: APIError) -> Answer { refuseUnauthenticated(error, client: incoming.client, requestID: incoming.requestID) }
        func unavailableBeforeAuthentication() -> Answer {
            unavailable("Storage is unavailable; retry with the same webhook-id.", requestID: incoming.requestID,
                        rate: failures.peek(incoming.client, limit: failureLimit, now: clock.now().timeIntervalSince1970))
        }
        guard let webhookID = incoming.webhookID, !webhookID.isEmpty else { return reject(Self.missing("webhook-id")) }
        guard webhookID.utf8.count <= 128, webhookID.utf8.allSatisfy(Self.isIDByte) else {
            return reject(Self.missing("webhook-id", "must be 1-128 characters of A-Z a-z 0-9 _ . -"))
        }
        guard let timestampText = incoming.timestamp, !timestampText.isEmpty else { return reject(Self.missing("webhook-timestamp")) }
        // Whole seconds in plain digits (no sign, no space), as Standard Webhooks writes them.
        guard timestampText.utf8.count <= 18, timestampText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let timestamp = Int64(timestampText) else {
            return reject(Self.missing("webhook-timestamp", "must be Unix seconds in digits"))
        }
        guard let signature = incoming.signature, !signature.isEmpty else { return reject(Self.missing("webhook-signature")) }
        guard let document = try? JSONDecoder().decode(JSONValue.self, from: Data(incoming.body)), let body = document.objectValue else {
            return reject(APIError(status: 400, code: "malformed_json", title: "Malformed JSON", detail: "The body must be a JSON object with install_id, command and args."))
        }
        // The install names the credential; without one nothing can be verified, so an absent or
        // unknown install is a failed signature (401), not a 404 that would confirm ids.
        let unverifiable = APIError(status: 401, code: "invalid_signature", title: "Invalid signature",
                                    detail: "The signature cannot be verified: the body's `install_id` names no install of a signing app.")
        guard let installID = body["install_id"]?.stringValue, RecordID.isValid(installID, prefix: "ins") else { return reject(unverifiable) }
        let content = StandardWebhooks.signedContent(id: webhookID, timestamp: timestampText, body: incoming.body)
        var entry: GatewayCache.Entry
        var fresh = false
        do {
            if let cached = cache.get(installID) {
                entry = cached
            } else {
                guard let loaded = try await load(installID) else { return reject(unverifiable) }
                entry = loaded
                fresh = true
            }
        } catch {
            logger.error("command target lookup failed", metadata: ["error_type": "\(type(of: error))"])
            return unavailableBeforeAuthentication()
        }
        func verified(_ entry: GatewayCache.Entry) -> Bool {
            StandardWebhooks.verify(header: signature, content: content, keys: entry.keys(at: clock.millis), publicKey: entry.publicKey)
        }
        var authentic = verified(entry)
        if !authentic && !fresh {
            // Maybe signed with a secret created (or a key published) on another node since this
            // entry was loaded: look at the stamp, reload when it moved.
            do {
                if let check = try await CommandStore.check(install: installID, webhookID: "", in: database),
                   check.stamp != entry.stamp, let loaded = try await load(installID) {
                    entry = loaded
                    fresh = true
                    authentic = verified(entry)
                }
            } catch {
                return unavailableBeforeAuthentication()
            }
        }
        guard authentic else {
            return reject(APIError(status: 401, code: "invalid_signature", title: "Invalid signature",
                                   detail: "No signature in webhook-signature matches this app's command credential over the id, timestamp and body."))
        }
        let now = clock.now().timeIntervalSince1970
        guard abs(now - Double(timestamp)) <= Self.timestampTolerance else {
            return reject(APIError(status: 401, code: "timestamp_out_of_window", title: "Timestamp out of window",
                                   detail: "webhook-timestamp is more than 300 seconds from the server's clock (server time \(Int(now)))."))
        }

        // Idempotency: one in-flight request per (app, webhook-id) on this node, then the store.
        // The reservation comes before the store lookup (so nothing can commit between them
        // unseen); the install's checks below still answer first.
        let key = entry.target.install.appId + "\u{0}" + webhookID
        let reserved = inFlight.withLock({ $0.insert(key).inserted })
        defer { if reserved { _ = inFlight.withLock { $0.remove(key) } } }
        // One statement: the cached entry's stamp, the rate override, the stored answer.
        let check: CommandCheck
        do {
            guard let found = try await CommandStore.check(install: installID, webhookID: webhookID, in: database) else {
                cache.remove(installID)
                return reject(unverifiable)
            }
            check = found
            if check.stamp != entry.stamp {
                // Changed since the entry was loaded (here or on another node): reload, and verify
                // again, so a rotated-out secret or a new signing key counts at once.
                guard let loaded = try await load(installID) else { return reject(unverifiable) }
                entry = loaded
                guard verified(entry) else {
                    return reject(APIError(status: 401, code: "invalid_signature", title: "Invalid signature",
                                           detail: "No signature in webhook-signature matches this app's command credential over the id, timestamp and body."))
                }
            }
        } catch {
            return unavailable("Storage is unavailable; retry with the same webhook-id.", requestID: incoming.requestID,
                               rate: limiter.peek(entry.target.install.id, limit: entry.target.rate, now: now))
        }
        var target = entry.target
        if let perSecond = check.ratePerSecond, let burst = check.rateBurst {
            target.rate = RateLimiter.Limit(perSecond: perSecond, burst: burst)
        }

        // Authenticated: from here every answer leaves a command-log row.
        let commandName = body["command"]?.stringValue ?? ""
        // The log keeps printable text only: one bad name must not fail its whole log batch.
        let loggedName = Self.printable(commandName)
        let bodyHash = Signatures.sha256Hex(incoming.body)
        let commandID = RecordID.make("cmd", millis: clock.millis)
        var rateHeaders = Self.rateHeaders(limiter.peek(target.install.id, limit: target.rate, now: now))
        func finish(_ answer: Answer, keep: Keep, sealed: Bool = false) async -> Answer {
            var answer = answer
            answer.headers += rateHeaders
            let duration = (ContinuousClock.now - start).nanoseconds / 1000
            var kept = String(decoding: answer.body, as: UTF8.self)
            if keep == .answer && sealed {
                // An answer holding secrets is kept for replay only sealed to this install.
                guard let text = try? Self.sealAnswer(answer.body, webhookID: webhookID, install: target.install, secrets: self.secrets) else {
                    return problem(.unavailable(Self.notRecorded), requestID: incoming.requestID, headers: rateHeaders + Self.retrySoon)
                }
                kept = text
            }
            let entry = CommandLogEntry(
                log: CommandLogRecord(id: commandID, installId: target.install.id, appId: target.install.appId, orgId: target.install.orgId,
                                      command: loggedName, webhookId: webhookID, bodySha256: bodyHash,
                                      outcome: answer.outcome, httpStatus: answer.status, durationUs: duration, createdAt: clock.millis),
                idempotency: keep == .nothing ? nil : IdempotencyRecord(appId: target.install.appId, webhookId: webhookID, bodySha256: bodyHash,
                                                                        httpStatus: keep == .answer ? answer.status : IdempotencyRecord.unanswered,
                                                                        response: keep == .answer ? kept : "", createdAt: clock.millis)
            )
            do {
                try await batcher.submit(entry)
            } catch {
                logger.error("command log row could not be committed", metadata: ["error_type": "\(type(of: error))"])
                return problem(.unavailable(Self.notRecorded), requestID: incoming.requestID, headers: rateHeaders + Self.retrySoon)
            }
            metrics.counter("mercato_commands_total", [("outcome", answer.outcome)]).increment()
            return answer
        }

        if target.install.status == .uninstalled {
            return await finish(problem(APIError(status: 404, code: "unknown_install", title: "Unknown install",
                                                 detail: "Install \(installID) was uninstalled; the org must install the app again."), requestID: incoming.requestID), keep: .nothing)
        }
        guard target.install.status == .active || target.install.status == .pendingOAuth else {
            return await finish(problem(APIError(status: 403, code: "install_inactive", title: "Install inactive",
                                                 detail: "Install \(installID) is \(target.install.status.rawValue); an admin must enable it."), requestID: incoming.requestID), keep: .nothing)
        }
        guard reserved else {
            return await finish(problem(APIError(status: 409, code: "idempotency_in_progress", title: "Request in progress",
                                                 detail: "A request with this webhook-id is still running; retry after it answers."), requestID: incoming.requestID), keep: .nothing)
        }
        if let stored = check.idempotency {
            // An authenticated key is bound to its body from its first use, answered or not.
            guard stored.bodySha256 == bodyHash else {
                return await finish(problem(APIError(status: 409, code: "idempotency_conflict", title: "Idempotency key reused",
                                                     detail: "This webhook-id was used with a different body; use a new webhook-id for a new command."),
                                            requestID: incoming.requestID), keep: .nothing)
            }
        }
        if let stored = check.idempotency, stored.httpStatus != IdempotencyRecord.unanswered {
            guard let body = Self.openAnswer(stored.response, webhookID: webhookID, install: target.install, secrets: self.secrets) else {
                return await finish(problem(APIError(status: 409, code: "stored_answer_unreadable", title: "Stored answer unreadable",
                                                     detail: "The answer kept for this webhook-id can no longer be opened (its key was retired); send the command again with a new webhook-id."),
                                            requestID: incoming.requestID), keep: .nothing)
            }
            return await finish(Answer(status: stored.httpStatus, body: body, isProblem: stored.httpStatus >= 400,
                                       headers: [("Idempotent-Replayed", "true")], outcome: "replayed"), keep: .nothing)
        }

        let decision: RateLimiter.Decision
        if let sharedLimiter {
            do {
                decision = try await sharedLimiter.take(target.install.id, limit: target.rate, now: now)
            } catch {
                logger.error("shared rate state could not be read", metadata: ["error_type": "\(type(of: error))"])
                return await finish(problem(.unavailable("Storage is unavailable; retry with the same webhook-id."), requestID: incoming.requestID,
                                            headers: Self.retrySoon), keep: .nothing)
            }
        } else {
            decision = limiter.take(target.install.id, limit: target.rate, now: now)
        }
        rateHeaders = Self.rateHeaders(decision)
        guard decision.allowed else {
            return await finish(problem(APIError(status: 429, code: "rate_limited", title: "Rate limited",
                                                 detail: "This install may send \(Self.number(target.rate.perSecond)) commands per second (burst \(target.rate.burst)); retry after \(decision.retryAfterSeconds) s."),
                                        requestID: incoming.requestID, headers: [("Retry-After", String(decision.retryAfterSeconds))]), keep: .bodyHash)
        }
        guard let definition = host.capabilities.commands[commandName]?.definition else {
            return await finish(problem(APIError(status: 404, code: "unknown_command", title: "Unknown command",
                                                 detail: commandName.isEmpty ? "The body names no `command`." : "No plugin serves `\(loggedName)`."),
                                        requestID: incoming.requestID), keep: .bodyHash)
        }
        let missing = definition.requiredScopes.filter { !target.scopes.contains($0) }
        guard missing.isEmpty else {
            return await finish(problem(APIError(status: 403, code: "scope_missing", title: "Scope missing",
                                                 detail: "`\(commandName)` needs the scope\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")), which this install was not granted."),
                                        requestID: incoming.requestID), keep: .bodyHash)
        }
        if let error = ArgsValidator.validate(body["args"], against: definition) {
            return await finish(problem(APIError(status: error.status, code: error.code, title: "Invalid args", detail: error.message), requestID: incoming.requestID), keep: .bodyHash)
        }

        if let reservations {
            // Other nodes may hold the same key: claim it where they all look.
            let taken: Bool
            do {
                taken = try await reservations.submit(CommandStore.Reservation(appId: target.install.appId, webhookId: webhookID, bodySha256: bodyHash,
                                                                                 until: clock.millis + reservationLease, now: clock.millis))
            } catch {
                logger.error("idempotency reservation failed", metadata: ["error_type": "\(type(of: error))"])
                return await finish(problem(.unavailable("Storage is unavailable; retry with the same webhook-id."), requestID: incoming.requestID,
                                            headers: Self.retrySoon), keep: .nothing)
            }
            guard taken else {
                return await finish(problem(APIError(status: 409, code: "idempotency_in_progress", title: "Request in progress",
                                                     detail: "A request with this webhook-id is running or was answered on another node; retry to get its answer."),
                                            requestID: incoming.requestID), keep: .nothing)
            }
        }
        let request = CommandRequest(
            id: commandID, command: commandName, args: body["args"]?.objectValue ?? [:],
            install: InstallInfo(installID: target.install.id, orgID: target.install.orgId, orgName: target.orgName, appKey: target.install.appKey,
                                 appVersion: target.install.version, grantedScopes: target.scopes, status: target.install.status.rawValue)
        )
        var hookLogger = logger
        hookLogger[metadataKey: "request_id"] = .string(incoming.requestID)
        let outcome = await host.run(request, requestID: incoming.requestID, logger: hookLogger, api: api)
        let answer: Answer
        switch outcome {
        case .result(let result):
            let json: JSONValue = .object(["id": .string(commandID), "command": .string(commandName), "status": .string("succeeded"), "result": result])
            answer = Answer(status: 200, body: (try? JSONCoding.verbatim.encode(json)) ?? Data(), isProblem: false, headers: [], outcome: "succeeded")
        case .failed(let error) where error.status >= 500:
            // The plugin says "not now" (e.g. a provider is down): not kept, so a retry with the
            // same webhook-id runs again.
            let headers: [(String, String)] = error.status == 503 ? [("Retry-After", "5")] : []
            return await finish(problem(APIError(status: error.status, code: error.code, title: "Command failed", detail: error.message),
                                        requestID: incoming.requestID, headers: headers), keep: .bodyHash)
        case .failed(let error):
            answer = problem(APIError(status: error.status, code: error.code, title: "Command failed", detail: error.message), requestID: incoming.requestID)
        case .crashed:
            answer = problem(APIError(status: 500, code: "handler_failed", title: "Handler failed",
                                      detail: "The command's handler failed; it has been logged with the request id."), requestID: incoming.requestID)
        case .timedOut:
            answer = problem(APIError(status: 504, code: "handler_timeout", title: "Handler timeout",
                                      detail: "The command's handler did not answer in time."), requestID: incoming.requestID)
        case .disabled:
            // Not run, so not kept for idempotency: the same webhook-id runs once it is enabled.
            let plugin = host.plugin(serving: commandName) ?? "?"
            return await finish(problem(APIError(status: 503, code: "plugin_disabled", title: "Plugin disabled",
                                                 detail: "The `\(plugin)` plugin that serves `\(commandName)` is disabled after repeated failures; retry later."),
                                        requestID: incoming.requestID, headers: [("Retry-After", "60")]), keep: .bodyHash)
        }
        return await finish(answer, keep: .answer, sealed: definition.answerHoldsSecrets && answer.status < 400)
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
        metrics.counter("mercato_commands_unauthenticated_total", [("code", error.code)]).increment()
        return problem(error, requestID: requestID, headers: headers)
    }

    /// What an authenticated answer leaves in the idempotency store besides its log row.
    enum Keep {
        /// Nothing: answered before the key was taken (install inactive, in progress) or from it.
        case nothing
        /// The key and its body hash without an answer: a refusal before the handler (rate
        /// limit, command, scopes, args) or the plugin's "not now". The same body runs again
        /// later; another body under the key is an `idempotency_conflict`.
        case bodyHash
        /// The answer, replayed for the same key and body.
        case answer
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

    // MARK: Helpers

    /// Reads everything the gateway needs about `installID` and caches it. The stamp is read
    /// first, so a change racing with the load leaves an older stamp (the next command reloads),
    /// never a newer stamp over older data.
    func load(_ installID: String) async throws -> GatewayCache.Entry? {
        let entry = try await database.read { db -> GatewayCache.Entry? in
            guard let check = try await CommandStore.check(install: installID, webhookID: "", on: db),
                  let found = try await InstallStore.find(id: installID, on: db),
                  let org = try await OrgStore.find(id: found.orgId, on: db), let app = try await AppStore.find(id: found.appId, on: db),
                  let manifest = try await self.registry.manifests.manifest(appID: app.id, version: app.latestVersion, on: db)
            else { return nil }
            let plan = Plan(rawValue: org.plan) ?? .free
            var install = found
            if install.removedAt != nil { install.status = .uninstalled }
            let secrets = manifest.commandSigning.type == "hmac" ? try await self.registry.verificationSecrets(of: app, kind: .command, on: db) : []
            let target = Target(install: install, orgName: org.name, plan: plan, signing: manifest.commandSigning,
                                rate: PlanLimits.defaultCommandRates[plan]!, scopes: install.scopes)
            return GatewayCache.Entry(target: target, stamp: check.stamp,
                                      keys: secrets.compactMap { secret in StandardWebhooks.secretKey(secret.text).map { ($0, secret.validUntil) } },
                                      publicKey: manifest.commandSigning.publicKey.flatMap(ManifestValidator.ed25519PublicKey),
                                      loadedAt: .now)
        }
        if let entry { cache.put(installID, entry) } else { cache.remove(installID) }
        return entry
    }

    static func printable(_ name: String) -> String {
        if name.utf8.count <= 100, name.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) { return name }
        return String(String.UnicodeScalarView(name.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }).prefix(100))
    }

    /// A 503 for storage trouble: the rate-limit headers that apply, and a retry in a second.
    private func unavailable(_ detail: String, requestID: String, rate: RateLimiter.Decision) -> Answer {
        problem(.unavailable(detail), requestID: requestID, headers: Self.rateHeaders(rate) + Self.retrySoon)
    }

    static let retrySoon = [("Retry-After", "1")]
    static let notRecorded = "The command could not be recorded; retry with the same webhook-id."

    private func problem(_ error: APIError, requestID: String, headers: [(String, String)] = []) -> Answer {
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
