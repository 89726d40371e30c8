public import Foundation

/// Small helpers plugins share.
public enum PluginSupport {
    /// An id that sorts by creation time: `prefix_` + milliseconds and randomness in base 36,
    /// each zero-padded so that string order is time order. A `suffix` replaces the randomness
    /// when the id must be the same each time (derived from another id).
    public static func sortableID(_ prefix: String, at date: Date = Date(), suffix: String? = nil) -> String {
        let millis = String(UInt64(date.timeIntervalSince1970 * 1000), radix: 36)
        let random = suffix ?? String(UInt64.random(in: 0 ... UInt64.max), radix: 36)
        return prefix + "_" + String(repeating: "0", count: max(0, 9 - millis.count)) + millis
            + String(repeating: "0", count: max(0, 13 - random.count)) + random
    }

    /// An RFC 3339 UTC time with milliseconds, as the API writes times.
    public static func timestamp(_ date: Date = Date()) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
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
