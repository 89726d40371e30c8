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

    /// `["a","b"]` with no backslash and no space: its strings; `nil` for any other text.
    private static func plain(_ text: String) -> [String]? {
        var utf8 = text.utf8[...]
        guard utf8.first == UInt8(ascii: "["), utf8.last == UInt8(ascii: "]"), !utf8.contains(UInt8(ascii: "\\")) else { return nil }
        utf8 = utf8.dropFirst().dropLast()
        var list: [String] = []
        while !utf8.isEmpty {
            if !list.isEmpty {
                guard utf8.first == UInt8(ascii: ","), utf8.count > 1 else { return nil }
                utf8 = utf8.dropFirst()
            }
            guard utf8.first == UInt8(ascii: "\"") else { return nil }
            utf8 = utf8.dropFirst()
            guard let end = utf8.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            // Control characters are escaped in JSON: one here means this is not what text(_:) wrote.
            guard !utf8[..<end].contains(where: { $0 < 0x20 }) else { return nil }
            list.append(String(decoding: utf8[..<end], as: UTF8.self))
            utf8 = utf8[utf8.index(after: end)...]
        }
        return list
    }
}
