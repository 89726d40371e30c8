public import Foundation

/// Times are stored as Unix milliseconds (`BIGINT`) on both engines: one type, exact ordering,
/// simple range queries. The API shows them as RFC 3339 UTC (`PluginSupport.timestamp`).
public enum Timestamp {
    public static func nowMillis() -> Int64 { millis(Date()) }
    public static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    public static func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
}
