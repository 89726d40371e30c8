import Foundation
import Hummingbird
import NIOCore

/// An `application/x-www-form-urlencoded` body (or a query string) as name → values.
struct FormData: Sendable {
    private(set) var values: [String: [String]] = [:]

    init(_ text: String) {
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            values[name, default: []].append(value)
        }
    }

    /// Values already decoded (one per name).
    init(values: [String: String]) {
        self.values = values.mapValues { [$0] }
    }

    init(buffer: ByteBuffer) {
        self.init(String(buffer: buffer))
    }

    subscript(_ name: String) -> String? { values[name]?.first }

    private static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
