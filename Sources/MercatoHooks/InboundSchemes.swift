/// The inbound provider webhook schemes the host knows (CONTRACT §11): an app's manifest may
/// declare `inbound: [{"provider": <one of these>, "secret_field": <a secret config key>}]`.
public enum InboundSchemes {
    /// Every scheme name an app manifest may declare.
    public static let known: [String] = ["github", "phonepe", "razorpay", "shopify", "slack", "standard-webhooks", "stripe"]
}
