public import Foundation
public import MercatoHooks

/// The JSON configurations of Mercato, in one place. Two, because two different things are
/// encoded: API answers built from Swift types (``encoder``: property names become snake_case)
/// and JSON kept or sent as it is (``verbatim``: events, stored answers, config values,
/// manifests, plugin data), whose keys belong to someone else and must never be rewritten.
/// Both sort keys (stable bytes, stable hashes) and leave `/` unescaped.
public enum JSONCoding {
    /// API answers: snake_case fields from Swift property names, RFC 3339 UTC times.
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(PluginSupport.timestamp(date))
        }
        return e
    }()

    /// API request bodies: snake_case fields into Swift property names.
    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    /// JSON kept or sent as it is: keys untouched, sorted.
    public static let verbatim: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// `value` as JSON text, keys untouched (``verbatim``).
    public static func text(_ value: some Encodable) throws -> String {
        String(decoding: try verbatim.encode(value), as: UTF8.self)
    }

    /// A JSON value's text, written directly (``JSONValue/jsonText()``): the same text as
    /// ``verbatim`` writes, at a fraction of the cost.
    public static func text(_ value: JSONValue) throws -> String {
        try value.jsonText()
    }

    /// A JSON value from its text, read directly (``JSONValue/init(parsing:)-(String)``).
    public static func value(_ type: JSONValue.Type, from text: String) throws -> JSONValue {
        try JSONValue(parsing: text)
    }

    /// A value of `type` from JSON text with keys as they are.
    public static func value<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
