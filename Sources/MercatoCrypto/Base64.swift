public import Foundation
import CSodium

extension Data {
    /// Decodes standard or URL-safe base64, padded or not.
    public init?(base64Lenient text: some StringProtocol) {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = s.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { s += String(repeating: "=", count: 4 - remainder) }
        self.init(base64Encoded: s)
    }

    /// URL-safe base64 without padding, for token texts.
    public func base64URLEncodedString() -> String {
        base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Standard base64 with its padding, decoded by libsodium (`sodium_base642bin`): the
/// signatures and secrets of every signed request are decoded here, and Foundation's decoder
/// cost more than the HMAC it feeds. Stricter than Foundation in one way: text whose last
/// character carries bits the bytes do not use (`QR==` for `QQ==`) is refused, as no encoder
/// writes it. Only ASCII text reaches libsodium (see ``decode(utf8:)``).
public enum Base64 {
    /// The bytes of `text`, `nil` when it is not padded standard base64 (whitespace included).
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8(decode(utf8:))
    }

    public static func decode(_ text: Substring) -> [UInt8]? {
        var text = text
        return text.withUTF8(decode(utf8:))
    }

    static func decode(utf8 text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let start = text.baseAddress, !text.isEmpty else { return [] }
        // Debian's libsodium 1.0.18 reads bytes of 0x80 and above as base64 characters (its
        // `char` is signed): such text is refused before it gets there.
        guard text.allSatisfy({ $0 < 0x80 }) else { return nil }
        let capacity = text.count / 4 * 3 + 3
        var decoded = 0
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: capacity) { out, count in
            var end: UnsafePointer<CChar>?
            let status = start.withMemoryRebound(to: CChar.self, capacity: text.count) { chars in
                let status = sodium_base642bin(out.baseAddress!, capacity, chars, text.count, nil, &decoded, &end, sodium_base64_VARIANT_ORIGINAL)
                return status == 0 && end == chars + text.count ? 0 : -1
            }
            failed = status != 0
            count = failed ? 0 : decoded
        }
        return failed ? nil : bytes
    }
}
