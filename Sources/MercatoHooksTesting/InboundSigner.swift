import Foundation
import MercatoHooks

/// Signs a test webhook the way each inbound provider does (CONTRACT §11), to test a receiver.
/// Interop tests sign with the providers' own libraries as well; this one is for Swift tests.
public enum InboundSigner {
    /// A Standard Webhooks secret for tests: `whsec_` + base64 of 24 fixed bytes.
    public static let standardSecret = "whsec_" + WebhookCrypto.base64(Array("mercato-inbound-test-key".utf8))

    /// A secret of the right form for `provider`, different per `seed`.
    public static func secret(for provider: String, seed: String = "a") -> String {
        switch provider {
        case "standard-webhooks": "whsec_" + WebhookCrypto.base64(Array("mercato-inbound-key-\(seed)".utf8))
        case "stripe": "whsec_stripe_test_\(seed)"
        default: "\(provider)-secret-\(seed)"
        }
    }

    /// A typical event body of `provider` for event `eventID`.
    public static func body(provider: String, eventID: String, amount: Int = 100) -> [UInt8] {
        let text: String
        switch provider {
        case "stripe":
            text = #"{"id":"\#(eventID)","object":"event","type":"payment_intent.succeeded","data":{"object":{"amount":\#(amount)}}}"#
        case "slack":
            text = #"{"type":"event_callback","event_id":"\#(eventID)","event":{"type":"message","text":"n\#(amount)"}}"#
        case "razorpay":
            text = #"{"entity":"event","event":"payment.captured","payload":{"payment":{"entity":{"amount":\#(amount)}}}}"#
        case "phonepe":
            let inner = #"{"success":true,"code":"PAYMENT_SUCCESS","data":{"merchantTransactionId":"\#(eventID)","transactionId":"\#(eventID)","amount":\#(amount)}}"#
            text = #"{"response":"\#(WebhookCrypto.base64(Array(inner.utf8)))"}"#
        default:
            text = #"{"type":"user.created","data":{"id":"\#(eventID)","amount":\#(amount)}}"#
        }
        return Array(text.utf8)
    }

    /// The event id the receiver finds for a body of ``body(provider:eventID:amount:)`` signed here.
    public static func expectedEventID(provider: String, eventID: String) -> String {
        provider == "phonepe" ? "\(eventID):PAYMENT_SUCCESS" : eventID
    }

    /// Whether `provider` signs a timestamp (and so refuses a stale one).
    public static func signsTimestamp(_ provider: String) -> Bool {
        ["stripe", "standard-webhooks", "slack"].contains(provider)
    }

    /// The headers `provider` sends with `body`, signed with `secret` at `timestamp` (Unix seconds).
    public static func headers(provider: String, secret: String, body: [UInt8], eventID: String, timestamp: Int) -> [String: String] {
        let key = Array(secret.utf8)
        switch provider {
        case "stripe":
            let mac = WebhookCrypto.hmacSHA256(key: key, Array("\(timestamp).".utf8) + body)
            return ["Stripe-Signature": "t=\(timestamp),v1=\(WebhookCrypto.hex(mac))"]
        case "github":
            return ["X-Hub-Signature-256": "sha256=" + WebhookCrypto.hex(WebhookCrypto.hmacSHA256(key: key, body)),
                    "X-GitHub-Delivery": eventID, "X-GitHub-Event": "push"]
        case "standard-webhooks":
            let raw = WebhookCrypto.fromBase64(String(secret.dropFirst(6))) ?? []
            let mac = WebhookCrypto.hmacSHA256(key: raw, Array("\(eventID).\(timestamp).".utf8) + body)
            return ["webhook-id": eventID, "webhook-timestamp": "\(timestamp)", "webhook-signature": "v1,\(WebhookCrypto.base64(mac))"]
        case "slack":
            let mac = WebhookCrypto.hmacSHA256(key: key, Array("v0:\(timestamp):".utf8) + body)
            return ["X-Slack-Request-Timestamp": "\(timestamp)", "X-Slack-Signature": "v0=" + WebhookCrypto.hex(mac)]
        case "shopify":
            return ["X-Shopify-Hmac-Sha256": WebhookCrypto.base64(WebhookCrypto.hmacSHA256(key: key, body)),
                    "X-Shopify-Webhook-Id": eventID, "X-Shopify-Topic": "orders/create"]
        case "razorpay":
            return ["X-Razorpay-Signature": WebhookCrypto.hex(WebhookCrypto.hmacSHA256(key: key, body)), "X-Razorpay-Event-Id": eventID]
        case "phonepe":
            let object = (try? JSONDecoder().decode(JSONValue.self, from: Data(body)))?.objectValue
            let response = object?["response"]?.stringValue ?? ""
            return ["X-VERIFY": WebhookCrypto.hex(WebhookCrypto.sha256(Array(response.utf8) + key)) + "###1"]
        default:
            return [:]
        }
    }

    /// The header whose absence leaves the request unsigned.
    public static func signatureHeader(_ provider: String) -> String {
        switch provider {
        case "stripe": "Stripe-Signature"
        case "github": "X-Hub-Signature-256"
        case "standard-webhooks": "webhook-signature"
        case "slack": "X-Slack-Signature"
        case "shopify": "X-Shopify-Hmac-Sha256"
        case "razorpay": "X-Razorpay-Signature"
        default: "X-VERIFY"
        }
    }
}
