/// Any JSON value: command arguments and results, event payloads, plugin data.
///
/// Literals build one, so plugins and tests write `["title": "Ship it", "count": 2]`.
public enum JSONValue: Sendable, Equatable, Hashable, Codable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number; whole numbers below 2⁵³ are written without a fraction.
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object([String: JSONValue])

    /// Set (to `true`) in a decoder's `userInfo` when it reads every scalar as text too (YAML):
    /// booleans and numbers are then tried before strings, so `true` stays a boolean.
    public static let scalarsReadAsText = CodingUserInfoKey(rawValue: "mercato.jsonvalue.scalars-read-as-text")!

    /// Decodes any JSON value.
    public init(from decoder: any Decoder) throws {
        // A decoder tells a value's kind only by throwing for the wrong ones, and each throw
        // builds an error with its coding path: for JSON, whose decoder never reads a number or
        // a boolean as text, the commonest kinds (strings, then objects) are tried first, so most
        // values cost one throw or none. An error from inside an object (its path is longer) is
        // the object's own and is passed on.
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if decoder.userInfo[Self.scalarsReadAsText] as? Bool == true {
            // Typed scalars before text, as a YAML reader needs.
            if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let n = try? c.decode(Double.self) { self = .number(n) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
            else { self = .object(try c.decode([String: JSONValue].self)) }
            return
        }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        do {
            self = .object(try c.decode([String: JSONValue].self))
            return
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.count == decoder.codingPath.count {
            // Not an object.
        }
        if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else { self = .array(try c.decode([JSONValue].self)) }
    }

    /// Encodes the value, a whole number as an integer.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n.rounded() == n, abs(n) < 9.0e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// The path of the first string (or object key) holding a NUL character, which storage
    /// engines refuse (PostgreSQL `TEXT`); `nil` when there is none.
    public func pathOfNUL(_ path: String = "") -> String? {
        // One pass over the bytes first (not over characters: grapheme breaking cost a
        // kv.set's 1 KiB value 4% of its CPU); values without NUL, nearly all, build no path.
        guard containsNUL else { return nil }
        switch self {
        case .string(let s): return Self.hasNUL(s) ? path : nil
        case .array(let a):
            for (i, v) in a.enumerated() { if let p = v.pathOfNUL("\(path)[\(i)]") { return p } }
            return nil
        case .object(let o):
            for (k, v) in o {
                let p = path.isEmpty ? k : "\(path).\(k)"
                if Self.hasNUL(k) { return path.isEmpty ? "(a key)" : "\(path) (a key)" }
                if let found = v.pathOfNUL(p) { return found }
            }
            return nil
        default: return nil
        }
    }

    /// Whether a string, key or member anywhere in the value holds the NUL character.
    public var containsNUL: Bool {
        switch self {
        case .string(let s): return Self.hasNUL(s)
        case .array(let a): return a.contains { $0.containsNUL }
        case .object(let o): return o.contains { Self.hasNUL($0.key) || $0.value.containsNUL }
        default: return false
        }
    }

    /// In UTF-8 the byte 0 is the NUL character and nothing else.
    static func hasNUL(_ s: String) -> Bool {
        s.utf8.withContiguousStorageIfAvailable { $0.contains(0) } ?? s.utf8.contains(0)
    }

    /// The member `key` of an object, `nil` otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// A number without a needless `.0`, for messages.
    public var compactText: String {
        if case .number(let n) = self { return n.rounded() == n && abs(n) < 9.0e15 ? String(Int64(n)) : String(n) }
        return "\(self)"
    }

    /// The string, `nil` for any other kind of value.
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    /// The boolean, `nil` for any other kind of value.
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// The number, `nil` for any other kind of value.
    public var numberValue: Double? { if case .number(let n) = self { n } else { nil } }
    /// The object's members, `nil` for any other kind of value.
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
    /// The array's elements, `nil` for any other kind of value.
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
}

/// Literals, so plugins and tests write `["title": "Ship it", "count": 2]`.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    /// A ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
    /// A ``number(_:)``.
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    /// A ``number(_:)``.
    public init(floatLiteral value: Double) { self = .number(value) }
    /// A ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An ``array(_:)``.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// An ``object(_:)``; of two equal keys, the last wins.
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(Dictionary(elements) { _, last in last }) }
}
