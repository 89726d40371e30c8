import Foundation

/// A list of strings kept in one text column as a JSON array (granted scopes, config keys,
/// plugins still owing a hook). Records carry `[String]`; only storage sees the text.
enum StoredList {
    static func text(_ list: [String]) -> String {
        // Encoding an array of strings cannot fail.
        String(decoding: (try? JSONEncoder().encode(list)) ?? Data("[]".utf8), as: UTF8.self)
    }

    /// The list in `text`. The lists as ``text(_:)`` writes them, with no escape in any string
    /// (scopes and config keys are plain names), are read by a scan of their quotes: an install
    /// row holds two and is read on every inbound event and API read of it. Anything else goes
    /// through `JSONDecoder`.
    static func decode(_ text: String) throws -> [String] {
        if let plain = plain(text) { return plain }
        do { return try JSONDecoder().decode([String].self, from: Data(text.utf8)) } catch {
            throw StorageError("a stored list is not a JSON array of strings")
        }
    }

    /// `["a","b"]` with no backslash and no space: its strings; `nil` for any other text. One
    /// pass over the string's own bytes.
    private static func plain(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { bytes -> [String]? in
            let end = bytes.count - 1
            guard end >= 1, bytes[0] == UInt8(ascii: "["), bytes[end] == UInt8(ascii: "]") else { return nil }
            var list: [String] = []
            var at = 1
            while at < end {
                if !list.isEmpty {
                    guard bytes[at] == UInt8(ascii: ",") else { return nil }
                    at += 1
                }
                guard at < end, bytes[at] == UInt8(ascii: "\"") else { return nil }
                at += 1
                let start = at
                while at < end, bytes[at] != UInt8(ascii: "\"") {
                    // An escape, or a control character (escaped in JSON): not what text(_:) wrote.
                    guard bytes[at] != UInt8(ascii: "\\"), bytes[at] >= 0x20 else { return nil }
                    at += 1
                }
                guard at < end else { return nil }
                list.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< at]), as: UTF8.self))
                at += 1
            }
            return list
        }
    }
}
