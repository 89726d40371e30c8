public import Foundation
#if canImport(FoundationNetworking)
public import FoundationNetworking
#endif

/// Sends signed commands to a Mercato server for one install of your app.
///
/// ```swift
/// let client = MercatoClient(baseURL: URL(string: "https://mercato.example.com")!,
///                            installID: "ins_...", signer: try CommandSigner(secret: "whsec_..."))
/// let answer = try await client.command("kv.set", args: ["key": "greeting", "value": "hello"])
/// print(answer.result)   // {"key": "greeting", "version": 1}
/// ```
///
/// Every call has a `webhook-id`; a retry (see ``RetryPolicy``) sends the same id and the same
/// body bytes again with a fresh timestamp and signature, so the command runs at most once.
/// To retry across process restarts yourself, choose the id, store it, and pass it again.
public struct MercatoClient: Sendable {
    /// The server's base URL, e.g. `https://mercato.example.com`.
    public let baseURL: URL
    /// The install the commands act on (`ins_...`).
    public let installID: String
    /// Signs each request.
    public let signer: CommandSigner
    /// When to send again.
    public let retryPolicy: RetryPolicy
    private let session: URLSession

    /// - Parameters:
    ///   - baseURL: the server's base URL; the endpoint is `{baseURL}/api/v1/apps/commands`.
    ///   - installID: the install the commands act on.
    ///   - signer: the app's command credential.
    ///   - retryPolicy: when to send again; ``RetryPolicy/default`` unless given.
    ///   - session: the `URLSession` to send with; `URLSession.shared` unless given.
    public init(baseURL: URL, installID: String, signer: CommandSigner, retryPolicy: RetryPolicy = .default,
                session: URLSession = .shared) {
        self.baseURL = baseURL
        self.installID = installID
        self.signer = signer
        self.retryPolicy = retryPolicy
        self.session = session
    }

    /// `POST /api/v1/apps/commands`.
    public var endpoint: URL {
        baseURL.appendingPathComponent("api").appendingPathComponent("v1").appendingPathComponent("apps")
            .appendingPathComponent("commands")
    }

    /// Runs `name` with `args` on the install.
    /// - Parameters:
    ///   - name: a command, e.g. `ping`, `kv.set`, `tasks.create`.
    ///   - args: its arguments (`{}` when none).
    ///   - webhookID: the idempotency key; a new random one unless given. Reuse one only for the same command and args.
    /// - Returns: the answer of a 2xx.
    /// - Throws: ``MercatoError`` when the server refused it (after retries where those apply),
    ///   ``MercatoClientError`` when no usable answer came, `CancellationError` when cancelled.
    public func command(_ name: String, args: [String: JSONValue] = [:], webhookID: String? = nil) async throws -> CommandResult {
        let body = try Self.commandBody(installID: installID, command: name, args: args)
        return try await send(body: body, webhookID: webhookID ?? CommandSigner.newWebhookID())
    }

    /// The body of a command: `{"install_id":...,"command":...,"args":{...}}`, with `args`' keys
    /// sorted, so the same command gives the same bytes in every process.
    public static func commandBody(installID: String, command: String, args: [String: JSONValue]) throws -> Data {
        var out = [UInt8]()
        try JSONValue.writeObject([("install_id", .string(installID)), ("command", .string(command)), ("args", .object(args))],
                                  into: &out)
        return Data(out)
    }

    /// Signs and sends `body` exactly as given under `webhookID`, retrying per ``retryPolicy``.
    /// ``command(_:args:webhookID:)`` builds the body; this is for a body you stored yourself.
    public func send(body: Data, webhookID: String) async throws -> CommandResult {
        guard CommandSigner.isValidWebhookID(webhookID) else {
            throw MercatoClientError(.invalidArgument, detail: "a webhook-id is 1-128 characters of A-Z a-z 0-9 _ . -")
        }
        var attempt = 0
        while true {
            attempt += 1
            let headers = signer.headers(for: body, webhookID: webhookID)
            var request = URLRequest(url: endpoint, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: retryPolicy.requestTimeout)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue("application/json, application/problem+json", forHTTPHeaderField: "Accept")
            for (name, value) in headers.dictionary { request.setValue(value, forHTTPHeaderField: name) }
            request.httpBody = body

            let data: Data
            let response: HTTPURLResponse
            do {
                let (received, answer) = try await session.data(for: request)
                guard let http = answer as? HTTPURLResponse else {
                    throw MercatoClientError(.invalidResponse, detail: "the answer is not HTTP", webhookID: webhookID, attempts: attempt)
                }
                (data, response) = (received, http)
            } catch let error as MercatoClientError {
                throw error
            } catch {
                try Task.checkCancellation()
                guard Self.isRetryable(error), attempt < retryPolicy.maxAttempts else {
                    throw MercatoClientError(.transport, detail: Self.describe(error), webhookID: webhookID, attempts: attempt)
                }
                try await Self.sleep(retryPolicy.backoff(retry: attempt))
                continue
            }

            let answer = Answer(response: response, data: data)
            if (200..<300).contains(response.statusCode) {
                guard let json = answer.json, json.objectValue != nil else {
                    throw MercatoClientError(.invalidResponse, detail: "a \(response.statusCode) answer without a JSON object",
                                             webhookID: webhookID, attempts: attempt)
                }
                return CommandResult(status: response.statusCode, json: json, replayed: answer.replayed, rateLimit: answer.rateLimit,
                                     requestID: answer.header("X-Request-Id"), webhookID: webhookID, attempts: attempt)
            }
            let error = answer.error(webhookID: webhookID, attempts: attempt)
            guard attempt < retryPolicy.maxAttempts, let delay = retryDelay(after: error) else { throw error }
            try await Self.sleep(delay)
        }
    }

    /// How long to wait before resending after `error`, or `nil` when it is final.
    func retryDelay(after error: MercatoError) -> TimeInterval? {
        // A stored answer stays the same however often it is asked for.
        if error.replayed { return nil }
        let retryable = error.status >= 500 || error.status == 429 || (error.status == 409 && error.code == "idempotency_in_progress")
        guard retryable else { return nil }
        if let retryAfter = error.retryAfter {
            return retryAfter <= retryPolicy.maxRetryAfter ? max(0, retryAfter) : nil
        }
        return retryPolicy.backoff(retry: error.attempts)
    }

    static func isRetryable(_ error: any Error) -> Bool {
        guard let urlError = error as? URLError else { return true }
        switch urlError.code {
        case .cancelled, .badURL, .unsupportedURL: return false
        default: return true
        }
    }

    static func describe(_ error: any Error) -> String {
        if let urlError = error as? URLError { return "network failure (URLError \(urlError.code.rawValue))" }
        return "network failure (\(type(of: error)))"
    }

    static func sleep(_ seconds: TimeInterval) async throws {
        guard seconds > 0 else { return }
        try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
    }
}

/// One HTTP answer, read.
struct Answer {
    let response: HTTPURLResponse
    let json: JSONValue?

    init(response: HTTPURLResponse, data: Data) {
        self.response = response
        json = data.isEmpty ? nil : try? JSONValue(parsing: data)
    }

    func header(_ name: String) -> String? {
        for (key, value) in response.allHeaderFields {
            if let key = key as? String, key.caseInsensitiveCompare(name) == .orderedSame { return value as? String }
        }
        return nil
    }

    var replayed: Bool { header("Idempotent-Replayed")?.trimmingCharacters(in: .whitespaces).lowercased() == "true" }

    var rateLimit: RateLimit? {
        func number(_ name: String) -> Int? { header(name).flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
        guard let limit = number("RateLimit-Limit"), let remaining = number("RateLimit-Remaining"), let reset = number("RateLimit-Reset")
        else { return nil }
        return RateLimit(limit: limit, remaining: remaining, reset: reset)
    }

    /// `Retry-After` as seconds from now: delta seconds or an HTTP date.
    var retryAfter: TimeInterval? {
        guard let text = header("Retry-After")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Int(text) { return TimeInterval(max(0, seconds)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text).map { max(0, $0.timeIntervalSinceNow) }
    }

    func error(webhookID: String, attempts: Int) -> MercatoError {
        let status = response.statusCode
        let problem = json ?? .null
        return MercatoError(
            status: status,
            code: problem["code"]?.stringValue ?? "http_\(status)",
            title: problem["title"]?.stringValue,
            detail: problem["detail"]?.stringValue,
            type: problem["type"]?.stringValue,
            requestID: problem["request_id"]?.stringValue ?? header("X-Request-Id"),
            webhookID: webhookID,
            retryAfter: retryAfter,
            rateLimit: rateLimit,
            replayed: replayed,
            attempts: attempts,
            body: problem
        )
    }
}
