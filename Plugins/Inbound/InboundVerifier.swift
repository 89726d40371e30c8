public import Foundation
public import MercatoHooks

/// Checks a provider's webhook signature exactly as the provider documents it (CONTRACT §11),
/// and finds the provider's event id and type in a verified request.
public struct InboundVerifier: Sendable {
    /// How far a signed timestamp may be from now, for the schemes that sign one.
    public static let tolerance: TimeInterval = 300

    /// What a verified request carries.
    public struct Verified: Sendable, Equatable {
        /// The provider's id of the event (a hash of the body when the provider sends none).
        public var eventID: String
        /// The provider's name of the event type, `nil` when it sends none.
        public var eventType: String?
        /// The body as JSON (a string when the body is not JSON).
        public var payload: JSONValue
        /// The body's text when it is JSON (PhonePe: the decoded `response`'s), delivered as it is.
        public var payloadText: JSONText?
    }

    let provider: String
    let secret: InboundSecret

    public init(provider: String, secret: InboundSecret) {
        self.provider = provider
        self.secret = secret
    }

    /// The verified request, or 401 `invalid_signature` (which never says what was expected).
    public func verify(_ request: PublicRouteRequest, now: Date) throws -> Verified {
        let body = request.body
        switch provider {
        case "stripe": try stripe(request, body, now: now)
        case "github": try hexHMAC(request.header("X-Hub-Signature-256"), prefix: "sha256=", body)
        case "standard-webhooks": try standardWebhooks(request, body, now: now)
        case "slack": try slack(request, body, now: now)
        case "shopify": try shopify(request, body)
        case "razorpay": try hexHMAC(request.header("X-Razorpay-Signature"), prefix: "", body)
        case "phonepe": try phonepe(request, body)
        default: throw Self.invalid("this provider is not known")
        }
        return identify(request, body)
    }

    static func invalid(_ why: String) -> CommandError {
        CommandError(status: 401, code: "invalid_signature", message: "The request's signature could not be verified: \(why).")
    }

    // MARK: Schemes

    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` over `<t>.<body>`, the secret's text as key.
    func stripe(_ request: PublicRouteRequest, _ body: [UInt8], now: Date) throws {
        guard let header = request.header("Stripe-Signature") else { throw Self.invalid("the Stripe-Signature header is missing") }
        var timestamp: String?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let pair = PluginSupport.trimmingBlanks(item).split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = pair[1] }
            if pair[0] == "v1", let bytes = WebhookCrypto.fromHex(pair[1]) { signatures.append(bytes) }
        }
        guard let timestamp else { throw Self.invalid("the Stripe-Signature header has no timestamp") }
        try Self.checkFresh(timestamp, now: now)
        guard !signatures.isEmpty else { throw Self.invalid("the Stripe-Signature header has no v1 signature") }
        let expected = WebhookCrypto.hmacSHA256(key: secret.utf8, prefix: Array("\(timestamp).".utf8), body)
        try Self.anyMatches(expected, signatures)
    }

    /// A hex HMAC-SHA256 of the body (GitHub's after `sha256=`, Razorpay's bare).
    func hexHMAC(_ header: String?, prefix: String, _ body: [UInt8]) throws {
        guard let header else { throw Self.invalid("the signature header is missing") }
        guard header.hasPrefix(prefix), let given = WebhookCrypto.fromHex(String(header.dropFirst(prefix.count))) else {
            throw Self.invalid("the signature header is malformed")
        }
        try Self.anyMatches(WebhookCrypto.hmacSHA256(key: secret.utf8, body), [given])
    }

    /// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body.
    func shopify(_ request: PublicRouteRequest, _ body: [UInt8]) throws {
        guard let header = request.header("X-Shopify-Hmac-Sha256") else { throw Self.invalid("the X-Shopify-Hmac-Sha256 header is missing") }
        guard let given = WebhookCrypto.fromBase64(String(PluginSupport.trimmingBlanks(header))) else { throw Self.invalid("the signature header is malformed") }
        try Self.anyMatches(WebhookCrypto.hmacSHA256(key: secret.utf8, body), [given])
    }

    /// Standard Webhooks (and Svix's `svix-` headers, as Clerk and Resend send): `v1,<base64>`
    /// signatures, space separated, over `<id>.<timestamp>.<body>`, the key the base64 after `whsec_`.
    func standardWebhooks(_ request: PublicRouteRequest, _ body: [UInt8], now: Date) throws {
        let prefix = request.header("webhook-signature") != nil ? "webhook-" : "svix-"
        guard let id = request.header(prefix + "id"), let timestamp = request.header(prefix + "timestamp"),
              let header = request.header(prefix + "signature") else { throw Self.invalid("the webhook-id, webhook-timestamp or webhook-signature header is missing") }
        try Self.checkFresh(timestamp, now: now)
        let text = String(decoding: secret.utf8, as: UTF8.self)
        guard let key = WebhookCrypto.fromBase64(text.hasPrefix("whsec_") ? text.dropFirst(6) : text[...]) else {
            throw Self.invalid("the install's secret is not a Standard Webhooks secret (whsec_ and base64)")
        }
        // Split as bytes (the header is ASCII; a split by `Character` walks grapheme clusters).
        let signatures = header.utf8.split(separator: UInt8(ascii: " ")).compactMap { part -> [UInt8]? in
            guard let comma = part.firstIndex(of: UInt8(ascii: ",")), part[..<comma].elementsEqual("v1".utf8) else { return nil }
            return WebhookCrypto.fromBase64(Substring(part[part.index(after: comma)...]))
        }
        let expected = WebhookCrypto.hmacSHA256(key: key, prefix: Array("\(id).\(timestamp).".utf8), body)
        try Self.anyMatches(expected, signatures)
    }

    /// `X-Slack-Signature: v0=<hex>` over `v0:<X-Slack-Request-Timestamp>:<body>`.
    func slack(_ request: PublicRouteRequest, _ body: [UInt8], now: Date) throws {
        guard let timestamp = request.header("X-Slack-Request-Timestamp"), let header = request.header("X-Slack-Signature") else {
            throw Self.invalid("the X-Slack-Signature or X-Slack-Request-Timestamp header is missing")
        }
        try Self.checkFresh(timestamp, now: now)
        guard header.hasPrefix("v0="), let given = WebhookCrypto.fromHex(String(header.dropFirst(3))) else { throw Self.invalid("the signature header is malformed") }
        try Self.anyMatches(WebhookCrypto.hmacSHA256(key: secret.utf8, prefix: Array("v0:\(timestamp):".utf8), body), [given])
    }

    /// PhonePe callbacks: body `{"response": "<base64>"}`, `X-VERIFY: <hex SHA-256 of response +
    /// salt key>###<salt index>`; the secret is the salt key.
    func phonepe(_ request: PublicRouteRequest, _ body: [UInt8]) throws {
        guard let header = request.header("X-VERIFY") else { throw Self.invalid("the X-VERIFY header is missing") }
        let parts = header.components(separatedBy: "###")
        guard parts.count == 2, !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber), let given = WebhookCrypto.fromHex(parts[0]) else {
            throw Self.invalid("the X-VERIFY header is malformed")
        }
        guard let response = Self.json(body)?["response"]?.stringValue else { throw Self.invalid("the body has no `response`") }
        try Self.anyMatches(WebhookCrypto.sha256(Array(response.utf8) + secret.utf8), [given])
    }

    // MARK: Helpers

    static func checkFresh(_ timestamp: String, now: Date) throws {
        guard let seconds = Int64(PluginSupport.trimmingBlanks(timestamp)) else { throw invalid("the timestamp is not a number") }
        guard abs(now.timeIntervalSince1970 - Double(seconds)) <= tolerance else { throw invalid("the timestamp is more than 300 s away") }
    }

    /// Every candidate is compared (in constant time each), so the time taken does not tell which matched.
    static func anyMatches(_ expected: [UInt8], _ given: [[UInt8]]) throws {
        var matched = false
        for candidate in given where WebhookCrypto.constantTimeEqual(expected, candidate) { matched = true }
        guard matched else { throw invalid("no signature matches") }
    }

    static func json(_ body: [UInt8]) -> JSONValue? {
        try? JSONValue(parsing: body)
    }

    static func text(_ body: [UInt8]) -> JSONText? {
        try? JSONText(reading: body)
    }

    /// The provider's event id and type, where each provider puts them.
    func identify(_ request: PublicRouteRequest, _ body: [UInt8]) -> Verified {
        var text = Self.text(body)
        var payload = text?.value ?? .string(String(decoding: body, as: UTF8.self))
        let object = payload.objectValue ?? [:]
        var id: String?
        var type: String?
        switch provider {
        case "stripe":
            id = object["id"]?.stringValue
            type = object["type"]?.stringValue
        case "github":
            id = request.header("X-GitHub-Delivery")
            type = request.header("X-GitHub-Event")
        case "standard-webhooks":
            id = request.header("webhook-id") ?? request.header("svix-id")
            type = object["type"]?.stringValue
        case "slack":
            id = object["event_id"]?.stringValue
            type = object["event"]?.objectValue?["type"]?.stringValue ?? object["type"]?.stringValue
        case "shopify":
            id = request.header("X-Shopify-Webhook-Id") ?? request.header("X-Shopify-Event-Id")
            type = request.header("X-Shopify-Topic")
        case "razorpay":
            id = request.header("X-Razorpay-Event-Id")
            type = object["event"]?.stringValue
        case "phonepe":
            // The event is the decoded `response`.
            if let response = object["response"]?.stringValue, let decoded = WebhookCrypto.fromBase64(response), let innerText = Self.text(decoded) {
                let inner = innerText.value
                payload = inner
                text = innerText
                let data = inner.objectValue?["data"]?.objectValue
                if let transaction = data?["transactionId"]?.stringValue ?? data?["merchantTransactionId"]?.stringValue,
                   let code = inner.objectValue?["code"]?.stringValue {
                    id = "\(transaction):\(code)"
                }
                type = inner.objectValue?["code"]?.stringValue
            }
        default:
            break
        }
        let eventID = id.flatMap { $0.isEmpty ? nil : $0 } ?? "sha256:" + WebhookCrypto.hex(WebhookCrypto.sha256(body))
        return Verified(eventID: eventID, eventType: type, payload: payload, payloadText: text)
    }
}
