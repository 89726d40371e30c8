public import Foundation
internal import MercatoCrypto

/// Small helpers plugins share.
public enum PluginSupport {
    /// An id that sorts by creation time: `prefix_` + milliseconds and randomness in base 36,
    /// each zero-padded so that string order is time order. A `suffix` replaces the randomness
    /// when the id must be the same each time (derived from another id).
    public static func sortableID(_ prefix: String, at date: Date = Date(), suffix: String? = nil) -> String {
        let millis = UInt64(date.timeIntervalSince1970 * 1000)
        var out: [UInt8] = []
        out.reserveCapacity(prefix.utf8.count + 24 + (suffix?.utf8.count ?? 0))
        out.append(contentsOf: prefix.utf8)
        out.append(UInt8(ascii: "_"))
        appendBase36(millis, width: 9, to: &out)
        if let suffix {
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, 13 - suffix.utf8.count)))
            out.append(contentsOf: suffix.utf8)
        } else {
            appendBase36(SecureRandom.uint64(), width: 13, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let base36 = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)

    /// `value`'s lower-case base-36 digits (as `String(_:radix: 36)` writes them), zero-padded to
    /// at least `width`, appended in one go.
    static func appendBase36(_ value: UInt64, width: Int, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: a UInt64 has at most 13
        let count = withUnsafeMutableBytes(of: &digits) { buffer in
            var value = value
            var count = 0
            repeat {
                buffer[31 - count] = base36[Int(value % 36)]
                value /= 36
                count += 1
            } while value > 0
            return count
        }
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, width - count)))
        withUnsafeBytes(of: &digits) { out.append(contentsOf: $0[(32 - count)...]) }
    }

    /// `text` without the spaces and tabs around it (what `trimmingCharacters(in: .whitespaces)`
    /// does for header values, without Foundation's bridging to `NSString`, which showed in the
    /// profile of every API request).
    public static func trimmingBlanks<S: StringProtocol>(_ text: S) -> Substring {
        var bytes = Substring(text).utf8
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        return Substring(bytes)
    }

    /// An RFC 3339 UTC time with milliseconds, as the API writes times (e.g.
    /// `2026-11-21T20:44:01.123Z`; the text `ISO8601FormatStyle(includingFractionalSeconds: true)`
    /// writes, at a fraction of its cost: the digits go into one 24-byte buffer). The one
    /// formatter of the host's answers, events and log lines too.
    public static func timestamp(_ date: Date = Date()) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let millis = min(999, max(0, Int(((interval - Double(seconds)) * 1000).rounded(.down))))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(unsafeUninitializedCapacity: 24) { out in
            var at = 0
            func digits(_ n: Int, _ width: Int, then separator: UInt8) {
                var n = n
                for i in stride(from: width - 1, through: 0, by: -1) {
                    out[at + i] = UInt8(ascii: "0") + UInt8(n % 10)
                    n /= 10
                }
                out[at + width] = separator
                at += width + 1
            }
            digits(min(9999, max(0, Int(parts.tm_year) + 1900)), 4, then: UInt8(ascii: "-"))
            digits(Int(parts.tm_mon) + 1, 2, then: UInt8(ascii: "-"))
            digits(Int(parts.tm_mday), 2, then: UInt8(ascii: "T"))
            digits(Int(parts.tm_hour), 2, then: UInt8(ascii: ":"))
            digits(Int(parts.tm_min), 2, then: UInt8(ascii: ":"))
            digits(Int(parts.tm_sec), 2, then: UInt8(ascii: "."))
            digits(millis, 3, then: UInt8(ascii: "Z"))
            return at
        }
    }

    /// The time a ``timestamp(_:)`` text stands for; `nil` when it is not one.
    public static func date(_ text: String) -> Date? {
        try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }

    /// A `limit` query value: 1-200, 50 when absent.
    public static func pageLimit(_ text: String?) throws -> Int {
        guard let text else { return 50 }
        guard let n = Int(text), (1 ... 200).contains(n) else {
            throw CommandError.invalidRequest(field: "limit", "must be a whole number from 1 to 200")
        }
        return n
    }
}
