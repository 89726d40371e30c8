internal import MercatoCrypto
import Foundation

/// What a plugin needs to check a provider's webhook signature: HMAC-SHA256 and SHA-256, a
/// constant-time compare, and the hex and base64 forms providers send. The host's own crypto
/// (MercatoCrypto, libsodium) does the work: plugins reach it only through this.
public enum WebhookCrypto {
    /// HMAC-SHA256 of `message` under `key` (any length).
    public static func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Signatures.hmacSHA256(key: key, message: message)
    }

    /// HMAC-SHA256 of `prefix` followed by `message` (e.g. a signed timestamp, then the body),
    /// the same as of the two joined, without copying the body.
    public static func hmacSHA256(key: [UInt8], prefix: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Signatures.hmacSHA256(key: key, prefix: prefix, message: message)
    }

    /// SHA-256 of `message`.
    public static func sha256(_ message: [UInt8]) -> [UInt8] { Digest.sha256(message) }

    /// Whether `a` and `b` are equal, in time that depends only on their lengths.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool { ConstantTime.equals(a, b) }

    /// Lower-case hex of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String { Signatures.hex(bytes) }

    /// The bytes of hex text (either case), `nil` when it is not hex.
    public static func fromHex(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// Standard base64 of `bytes`.
    public static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The bytes of standard base64 text (padded), `nil` when it is not base64.
    public static func fromBase64(_ text: String) -> [UInt8]? { Base64.decode(text) }

    /// As ``fromBase64(_:)-(String)``, of part of a text (no copy).
    public static func fromBase64(_ text: Substring) -> [UInt8]? { Base64.decode(text) }
}
