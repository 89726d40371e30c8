import Foundation

/// A list of strings kept in one text column as a JSON array (granted scopes, config keys,
/// plugins still owing a hook). Records carry `[String]`; only storage sees the text.
enum StoredList {
    static func text(_ list: [String]) -> String {
        // Encoding an array of strings cannot fail.
        String(decoding: (try? JSONEncoder().encode(list)) ?? Data("[]".utf8), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> [String] {
        do { return try JSONDecoder().decode([String].self, from: Data(text.utf8)) } catch {
            throw StorageError("a stored list is not a JSON array of strings")
        }
    }
}
