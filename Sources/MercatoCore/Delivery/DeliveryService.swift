import AsyncHTTPClient
import Foundation
public import Logging
import MercatoCrypto
import MercatoHooks
public import MercatoStorage
import Metrics
import NIOCore
import NIOHTTP1
import SQLKit
public import ServiceLifecycle

/// How deliveries are retried and when an endpoint is given up on (CONTRACT §5).
public struct DeliveryPolicy: Sendable {
    /// Waits before the 1st, 2nd, ... retry; after the last retry fails the delivery is `failed`.
    public var schedule: [Duration] = [5, 300, 1800, 7200, 18000, 36000, 36000].map { .seconds($0) }
    /// Each wait is scaled by a random factor in 1 ± jitter.
    public var jitter: Double = 0.2
    /// A delivery succeeds with a 2xx within this time.
    public var timeout: Duration = .seconds(15)
    /// `Retry-After` on 429/503 is honoured within [1 s, this].
    public var maxRetryAfter: Duration = .seconds(36000)
    /// Consecutive failures that open an endpoint's circuit, and how long it stays open before
    /// one probe is let through.
    public var circuitThreshold = 5
    public var circuitCooldown: Duration = .seconds(60)
    /// An endpoint failing without a success for this long is disabled.
    public var disableAfter: Duration = .seconds(5 * 86400)
    /// Deliveries claimed and sent at once by one node (their outcomes commit together).
    public var batch = 256
    /// Batches one node sends at once, each claimed as soon as the sender's last one is recorded.
    public var batchesInFlight = 3

    public init() {}

    /// `schedule` from `MERCATO_WEBHOOK_RETRIES` (seconds, comma separated), timeout from
    /// `MERCATO_WEBHOOK_TIMEOUT_SECONDS`.
    public init(settings: Settings) {
        if let retries = settings.webhookRetries { schedule = retries.map { .seconds($0) } }
        timeout = .seconds(settings.webhookTimeoutSeconds)
        circuitCooldown = .seconds(settings.webhookCircuitCooldownSeconds)
    }
}

/// Drains the outbox to its receivers: fans each event out to the app of its install when that
/// app subscribes to the type, and to each of the org's own endpoints (CONTRACT §10) that takes
/// the type, then sends due deliveries signed per Standard Webhooks with every valid webhook
/// secret of the receiver. A delivery's receiver (`appId`) is an app's `app_` id or an org
/// endpoint's `whe_` id; everything else (schedule, Retry-After, 410, circuit breaker, 5-day
/// disable, address guard, log) is one path for both. Claims are leased (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL), so several nodes can run it; a restart loses nothing (the outbox and the
/// delivery rows are durable). At least once: receivers dedupe on `webhook-id`.
public struct DeliveryService: Service {
    let database: Database
    let registry: RegistryService
    let clients: DeliveryClients
    let clock: WallClock
    let logger: Logger
    let policy: DeliveryPolicy
    let addressGuard: AddressGuard
    let idleInterval: Duration
    /// The longest rest of an idle loop (``PeriodicWorker``): how late work another node wrote
    /// can be found when nothing is written here.
    let idleRest: Duration
    let attemptsCounted = CounterFamily("mercato_webhook_attempts_total", "outcome")

    public init(database: Database, registry: RegistryService, clients: DeliveryClients, clock: WallClock, logger: Logger,
                policy: DeliveryPolicy = DeliveryPolicy(), addressGuard: AddressGuard, idleInterval: Duration = .milliseconds(200),
                idleRest: Duration = .seconds(2)) {
        self.database = database
        self.registry = registry
        self.clients = clients
        self.clock = clock
        self.logger = logger
        self.policy = policy
        self.addressGuard = addressGuard
        self.idleInterval = idleInterval
        self.idleRest = idleRest
    }

    public func run() async throws {
        // Independent loops: the fan-out of new events, and `batchesInFlight` senders, each
        // claiming its next batch as soon as its last one is recorded (claims are leased, so
        // they never overlap), so no batch waits for another's slowest endpoint.
        await withDiscardingTaskGroup { group in
            group.addTask {
                await PeriodicWorker("webhook fan-out pass", every: idleInterval, restingUpTo: idleRest, wokenBy: .fanOut, logger: logger)
                    .run { try await fanOut(limit: max(200, policy.batch * 2)) }
            }
            for _ in 0 ..< policy.batchesInFlight {
                group.addTask {
                    await PeriodicWorker("webhook delivery pass", every: idleInterval, restingUpTo: idleRest, wokenBy: .senders, logger: logger)
                        .run { try await deliverDue() }
                }
            }
        }
    }

    // MARK: Fan-out

    /// Turns up to `limit` outbox events written without their deliveries (``FanOut``) into
    /// deliveries; answers how many events it read.
    @discardableResult
    public func fanOut(limit: Int = 200) async throws -> Int {
        let now = clock.millis
        let fanOut = FanOut(manifests: registry.manifests)
        let (events, made) = try await database.transaction { db -> (Int, Int) in
            var made = 0
            var reads = FanOut.Reads()
            let events = try await DeliveryStore.undispatched(limit: limit, on: db)
            for event in events {
                made += try await fanOut.route(event, at: now, reads: &reads, on: db)
            }
            try await DeliveryStore.markDispatched(events.map(\.id), at: now, on: db)
            return (events.count, made)
        }
        if made > 0 { Wakeup.senders.signal() }
        return events
    }

    // MARK: Attempts

    /// Sends up to one batch of due deliveries at once; answers how many it claimed.
    ///
    /// The common case (endpoint enabled with its circuit closed, URL allowed, payload kept) is
    /// done per batch: each app's endpoint state and webhook secrets are read once, the payloads
    /// in one statement, the attempts sent side by side, and their outcomes recorded in one
    /// transaction (one commit, one fsync, instead of one per delivery). Anything else (circuit
    /// open or half open, endpoint disabled, refused URL, event past retention) takes the
    /// per-delivery path, `attempt`.
    @discardableResult
    public func deliverDue() async throws -> Int {
        let now = clock.millis
        // The client keeps at most `connectionsPerHost` connections to one endpoint, so a batch to
        // one slow endpoint can take that many timeouts in turn: the lease covers them all.
        let rounds = Int64((policy.batch + DeliveryClients.connectionsPerHost - 1) / DeliveryClients.connectionsPerHost)
        let lease = now + (policy.timeout.components.seconds * rounds + 30) * 1000
        let due = try await database.transaction { try await DeliveryStore.claimDue(limit: policy.batch, now: now, leaseUntil: lease, on: $0) }
        guard !due.isEmpty else { return 0 }
        let appIDs = Array(Set(due.map(\.appId)))
        let ids = due.map(\.id)
        let (endpoints, payloads) = try await database.read { db -> ([String: EndpointRecord], [String: String]) in
            var endpoints: [String: EndpointRecord] = [:]
            for app in appIDs { endpoints[app] = try await DeliveryStore.endpoint(appID: app, on: db) }
            return (endpoints, try await DeliveryStore.payloads(eventIDs: ids, on: db))
        }
        var secrets: [String: [String]] = [:]
        var verdicts: [String: AddressGuard.Verdict] = [:]
        var fast: [(DeliveryRecord, String, HTTPClient)] = []
        var slow: [DeliveryRecord] = []
        for delivery in due {
            guard let endpoint = endpoints[delivery.appId], endpoint.circuit == "closed", endpoint.disabledAt == nil,
                  let payload = payloads[delivery.id] else { slow.append(delivery); continue }
            if verdicts[delivery.url] == nil { verdicts[delivery.url] = await addressGuard.verdict(for: delivery.url) }
            guard case .deliver(let host, let address) = verdicts[delivery.url] else { slow.append(delivery); continue }
            if secrets[delivery.appId] == nil { secrets[delivery.appId] = try await verificationSecrets(receiver: delivery.appId) }
            fast.append((delivery, payload, clients.client(host: host, address: address)))
        }
        let sent = await withTaskGroup(of: (DeliveryRecord, Response).self) { group -> [(DeliveryRecord, Response)] in
            for (delivery, payload, client) in fast {
                let keys = secrets[delivery.appId] ?? []
                group.addTask { (delivery, await send(delivery, payload: payload, secrets: keys, via: client)) }
            }
            for delivery in slow {
                group.addTask {
                    do { try await attempt(delivery) } catch {
                        logger.error("webhook attempt could not be recorded; it will be claimed again", metadata: [
                            "webhook_id": "\(delivery.id)", "error_type": "\(type(of: error))",
                        ])
                    }
                    return (delivery, Response(status: nil, body: nil, error: nil, retryAfter: nil, durationMs: -1))
                }
            }
            var out: [(DeliveryRecord, Response)] = []
            for await result in group where result.1.durationMs >= 0 { out.append(result) }
            return out
        }
        do {
            try await recordAll(sent)
        } catch {
            // One bad row must not hold the others: record them one by one.
            for (delivery, response) in sent {
                do { try await record(delivery, response, probe: false, final: false) } catch {
                    logger.error("webhook attempt could not be recorded; it will be claimed again", metadata: [
                        "webhook_id": "\(delivery.id)", "error_type": "\(type(of: error))",
                    ])
                }
            }
        }
        return due.count
    }

    /// What one HTTP attempt gave.
    struct Response {
        var status: Int?
        var body: String?
        var error: String?
        var retryAfter: Duration?
        var durationMs: Int64
    }

    func attempt(_ claimed: DeliveryRecord) async throws {
        var delivery = claimed
        let now = clock.millis
        let appID = claimed.appId
        let endpoint = try await database.read { try await DeliveryStore.endpoint(appID: appID, on: $0) }
        if let reason = endpoint.disabledReason, endpoint.disabledAt != nil {
            delivery.status = "failed"
            delivery.lastError = "endpoint disabled: \(reason)"
            let record = delivery
            try await database.transaction { try await DeliveryStore.update(record, on: $0) }
            return
        }
        var probe = false
        if endpoint.circuit != "closed" {
            let until = endpoint.openUntil ?? 0
            let taken = until <= now ? try await database.transaction {
                try await DeliveryStore.takeProbe(appID: appID, now: now, probeUntil: now + policy.circuitCooldown.millis, on: $0)
            } : false
            guard taken else {
                // The circuit is open: wait for it without spending an attempt. While a probe is
                // out (half open), look again in a second rather than the probe's whole lease.
                delivery.nextAttemptAt = endpoint.circuit == "half_open" ? now + 1000 : max(until, now + 1000)
                let record = delivery
                try await database.transaction { try await DeliveryStore.update(record, on: $0) }
                return
            }
            probe = true
        }
        let client: HTTPClient
        switch await addressGuard.verdict(for: delivery.url) {
        case .refused(let why):
            try await record(delivery, Response(status: nil, body: nil, error: why, retryAfter: nil, durationMs: 0), probe: false, final: true)
            return
        case .unresolved(let why):
            // Maybe a passing DNS failure: an ordinary failed attempt, retried on the schedule.
            try await record(delivery, Response(status: nil, body: nil, error: why, retryAfter: nil, durationMs: 0), probe: probe, final: false)
            return
        case .deliver(let host, let address):
            client = clients.client(host: host, address: address)
        }
        let eventID = delivery.id
        guard let payload = try await database.read({ try await DeliveryStore.payload(eventID: eventID, on: $0) }) else {
            try await record(delivery, Response(status: nil, body: nil, error: "the event is past its retention", retryAfter: nil, durationMs: 0), probe: false, final: true)
            return
        }
        let secrets = try await verificationSecrets(receiver: delivery.appId)
        let response = await send(delivery, payload: payload, secrets: secrets, via: client)
        try await record(delivery, response, probe: probe, final: false)
    }

    /// The secrets that sign for a receiver now: an app's webhook secrets or an org endpoint's.
    func verificationSecrets(receiver: String) async throws -> [String] {
        guard OrgWebhookService.isEndpointID(receiver) else { return try await registry.verificationSecrets(appID: receiver, kind: .webhook) }
        let now = clock.millis
        return try await database.read { db in
            try await OrgWebhookService.verificationSecrets(endpointID: receiver, secrets: registry.secrets, at: now, on: db)
        }
    }

    /// Records the attempt, the delivery's new state and the endpoint's, in one transaction;
    /// the endpoint's failure count moves atomically, since attempts run side by side.
    private func record(_ claimed: DeliveryRecord, _ response: Response, probe: Bool, final: Bool) async throws {
        let now = clock.millis
        let disabled = try await database.transaction { db in try await apply(claimed, response, probe: probe, final: final, now: now, on: db) }
        count(response)
        if let disabled {
            logger.warning("webhook endpoint disabled", metadata: ["receiver": "\(claimed.appId)", "reason": "\(disabled)"])
        }
    }

    /// Records a batch's attempts in one transaction (in id order, as if one by one).
    private func recordAll(_ results: [(DeliveryRecord, Response)]) async throws {
        guard !results.isEmpty else { return }
        let now = clock.millis
        let ordered = results.sorted { $0.0.id < $1.0.id }
        // 2xx answers (the common case) are written with a few multi-row statements; the rest one
        // by one first, so a success in the batch leaves its endpoint's failure count at zero.
        let delivered = ordered.filter { $0.1.status.map { (200 ... 299).contains($0) } ?? false }
        let others = ordered.filter { !($0.1.status.map { (200 ... 299).contains($0) } ?? false) }
        let disabled = try await database.transaction { db -> [(String, String)] in
            var disabled: [(String, String)] = []
            for (delivery, response) in others {
                if let reason = try await apply(delivery, response, probe: false, final: false, now: now, on: db) { disabled.append((delivery.appId, reason)) }
            }
            guard !delivered.isEmpty else { return disabled }
            try await DeliveryStore.insertAttempts(delivered.map { delivery, response in
                AttemptRecord(deliveryId: delivery.id, appId: delivery.appId, attempt: delivery.attempts + 1, statusCode: response.status,
                              durationMs: response.durationMs, responseBody: response.body, error: nil, createdAt: now)
            }, on: db)
            var groups: [String: [String]] = [:]
            for (delivery, response) in delivered { groups[delivery.appId + "\u{0}" + String(response.status ?? 200), default: []].append(delivery.id) }
            for (key, ids) in groups.sorted(by: { $0.key < $1.key }) {
                let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false)
                try await DeliveryStore.markDelivered(ids: ids, appID: String(parts[0]), statusCode: Int(parts[1]) ?? 200, at: now, on: db)
            }
            for app in Set(delivered.map(\.0.appId)).sorted() { try await DeliveryStore.recordSuccess(appID: app, on: db) }
            return disabled
        }
        for (_, response) in ordered { count(response) }
        for (app, reason) in disabled {
            logger.warning("webhook endpoint disabled", metadata: ["receiver": "\(app)", "reason": "\(reason)"])
        }
    }

    private func count(_ response: Response) {
        let ok = response.status.map { (200 ... 299).contains($0) } ?? false
        attemptsCounted(ok ? "delivered" : response.status.map { "http_\($0 / 100)xx" } ?? "error").increment()
    }

    /// The writes of one attempt's outcome on `db`; answers why the endpoint was disabled, if it was.
    private func apply(_ claimed: DeliveryRecord, _ response: Response, probe: Bool, final: Bool, now: Int64, on db: any SQLDatabase) async throws -> String? {
        let ok = response.status.map { (200 ... 299).contains($0) } ?? false
        var delivery = claimed
        delivery.attempts += 1
        delivery.lastStatusCode = response.status
        delivery.lastError = response.error
        let attempt = AttemptRecord(deliveryId: delivery.id, appId: delivery.appId, attempt: delivery.attempts, statusCode: response.status,
                                    durationMs: response.durationMs, responseBody: response.body, error: response.error, createdAt: now)
        let policy = self.policy
        try await DeliveryStore.insertAttempt(attempt, on: db)
        var disabled: String?
        if ok {
            delivery.status = "delivered"
            delivery.deliveredAt = now
            try await DeliveryStore.recordSuccess(appID: delivery.appId, on: db)
        } else if final || delivery.attempts > policy.schedule.count {
            delivery.status = "failed"
            if !final { delivery.lastError = (response.error ?? "HTTP \(response.status ?? 0)") + "; gave up after \(delivery.attempts) attempts" }
        } else {
            let endpoint = try await DeliveryStore.recordFailure(appID: delivery.appId, at: now, on: db)
            if let reason = endpoint.disabledReason, endpoint.disabledAt != nil {
                // Another attempt disabled the endpoint meanwhile: this one stops too, once.
                delivery.status = "failed"
                delivery.lastError = (response.error ?? "HTTP \(response.status ?? 0)") + "; endpoint disabled: \(reason)"
            } else if response.status == 410 {
                disabled = "the endpoint answered 410 Gone"
            } else if let since = endpoint.failingSince, now - since >= policy.disableAfter.millis {
                disabled = "the endpoint failed without a success for \(policy.disableAfter.components.seconds / 86400) days"
            }
            if let disabled {
                delivery.status = "failed"
                try await DeliveryStore.disable(appID: delivery.appId, reason: disabled, at: now, on: db)
                if OrgWebhookService.isEndpointID(delivery.appId) {
                    // The org's admins hear of it the same way, in their own org's inbox.
                    if let endpoint = try await OrgWebhookStore.find(id: delivery.appId, on: db) {
                        try await ActivityLog.record(org: endpoint.orgId, actor: "system:delivery", action: "webhook.endpoint_disabled",
                                                     target: endpoint.id, requestID: nil,
                                                     details: ["reason": .string(disabled), "receiver": "org_endpoint"], at: now, on: db)
                    }
                } else if let app = try await AppStore.find(id: delivery.appId, on: db) {
                    // The developer hears of it through the activity feed (the Notifications
                    // plugin turns it into an inbox entry of the developer org).
                    try await ActivityLog.record(org: app.developerOrgId, actor: "system:delivery", action: "webhook.endpoint_disabled",
                                                 target: app.key, requestID: nil, details: ["reason": .string(disabled)], at: now, on: db)
                }
            } else {
                delivery.status = "pending"
                var wait = Int64(Double(policy.schedule[delivery.attempts - 1].millis) * Double.random(in: (1 - policy.jitter) ... (1 + policy.jitter)))
                if let retryAfter = response.retryAfter, response.status == 429 || response.status == 503 {
                    wait = min(max(retryAfter.millis, 1000), policy.maxRetryAfter.millis)
                }
                delivery.nextAttemptAt = now + wait
                if probe || endpoint.consecutiveFailures >= policy.circuitThreshold {
                    let until = now + policy.circuitCooldown.millis
                    try await DeliveryStore.openCircuit(appID: delivery.appId, until: until, on: db)
                    delivery.nextAttemptAt = max(delivery.nextAttemptAt, until)
                }
            }
        }
        try await DeliveryStore.update(delivery, on: db)
        return disabled
    }

    /// POSTs the payload with the Standard Webhooks headers through `client` (pinned to the
    /// checked address); never throws.
    func send(_ delivery: DeliveryRecord, payload: String, secrets: [String], via client: HTTPClient) async -> Response {
        let started = ContinuousClock.now
        func elapsed() -> Int64 { (ContinuousClock.now - started).millis }
        let timestamp = String(clock.millis / 1000)
        let content = StandardWebhooks.signedContent(id: delivery.id, timestamp: timestamp, body: Array(payload.utf8))
        let signatures = secrets.compactMap { StandardWebhooks.sign(content: content, secret: $0) }
        guard !signatures.isEmpty else { return Response(status: nil, body: nil, error: "the receiver has no valid webhook secret", retryAfter: nil, durationMs: 0) }
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Mercato-Webhooks/1")
        request.headers.add(name: "webhook-id", value: delivery.id)
        request.headers.add(name: "webhook-timestamp", value: timestamp)
        request.headers.add(name: "webhook-signature", value: signatures.joined(separator: " "))
        request.body = .bytes(ByteBuffer(string: payload))
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(policy.timeout.nanoseconds))
            var body = ByteBuffer()
            for try await chunk in response.body {
                var chunk = chunk
                let room = 4096 - body.readableBytes
                if room <= 0 { break }
                if var part = chunk.readSlice(length: min(room, chunk.readableBytes)) { body.writeBuffer(&part) }
            }
            let text = String(decoding: body.readableBytesView, as: UTF8.self)
            return Response(status: Int(response.status.code), body: text.isEmpty ? nil : text, error: nil,
                            retryAfter: response.headers.first(name: "Retry-After").flatMap { Self.retryAfter($0, now: clock.now()) },
                            durationMs: elapsed())
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return Response(status: nil, body: nil, error: "no answer within \(policy.timeout.components.seconds) s", retryAfter: nil, durationMs: elapsed())
        } catch {
            return Response(status: nil, body: nil, error: Self.describe(error), retryAfter: nil, durationMs: elapsed())
        }
    }

    /// `Retry-After` as seconds or an HTTP date.
    static func retryAfter(_ value: String, now: Date) -> Duration? {
        if let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .seconds(max(0, Int(date.timeIntervalSince(now))))
    }

    /// A short, data-free description of a transport failure.
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connect timeout"
            case .remoteConnectionClosed: return "the endpoint closed the connection"
            default: return "transport error: \(String(describing: error))"
            }
        }
        return "connection failed (\(type(of: error)))"
    }
}

extension Duration {
    var millis: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
