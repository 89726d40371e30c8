/// JSON text read directly into a ``JSONValue``, without `JSONDecoder`'s generic containers
/// (which decide a value's kind by trying each kind in turn and throwing for the wrong ones):
/// command bodies, plugin values, inbound events and stored payloads are read on the hot paths.
///
/// It accepts what `JSONDecoder` accepts into a ``JSONValue`` (RFC 8259 text in UTF-8 after an
/// optional byte order mark, any value at the top, at most 512 levels of nesting, a comma before
/// a closing bracket or brace, numbers that a `Double` holds without overflow or underflow) and
/// reads it the same way (of two equal keys in an object the first one stays). Two differences,
/// both stricter, on purpose: a stray NUL byte outside strings, which `JSONDecoder` sometimes
/// skips, is refused; and a repeated key's later value, which `JSONDecoder` only scans, is read
/// and judged like any other (a number out of range there refuses the text).
extension JSONValue {
    /// Why some bytes are not a JSON value, and where (a byte offset from the start).
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The offset of the byte at which reading stopped.
        public let offset: Int
        /// What was wrong there, in words.
        public let reason: String

        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }

        public var description: String { "\(reason) at byte \(offset)" }
    }

    /// Reads one JSON value from UTF-8 `bytes` (surrounding whitespace allowed, nothing else).
    public init(parsing bytes: UnsafeRawBufferPointer) throws(ParseError) {
        self = try Self.read(bytes).get()
    }

    /// Reads one JSON value from UTF-8 `bytes`.
    public init(parsing bytes: some Collection<UInt8>) throws(ParseError) {
        let read = bytes.withContiguousStorageIfAvailable { Self.read(UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { Self.read($0) }
        self = try read.get()
    }

    /// Reads one JSON value from `text`.
    public init(parsing text: String) throws(ParseError) {
        var text = text
        self = try text.withUTF8 { Self.read(UnsafeRawBufferPointer($0)) }.get()
    }

    private static func read(_ bytes: UnsafeRawBufferPointer) -> Result<JSONValue, ParseError> {
        var reader = JSONReader(bytes: bytes)
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { reader.index = 3 }
        reader.skipWhitespace()
        return Result { () throws(ParseError) in
            let value = try reader.value()
            reader.skipWhitespace()
            guard reader.index == bytes.count else { throw reader.failure("Unexpected text after the JSON value") }
            return value
        }
    }
}

/// The reader behind ``JSONValue/init(parsing:)-(UnsafeRawBufferPointer)``: recursive descent
/// over the bytes, strings without escapes taken in one piece.
private struct JSONReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var depth = 0

    /// As deep as `JSONDecoder` reads.
    static let maxDepth = 512

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func failure(_ reason: String) -> JSONValue.ParseError {
        JSONValue.ParseError(offset: index, reason: reason)
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func value() throws(JSONValue.ParseError) -> JSONValue {
        guard index < bytes.count else { throw failure("Unexpected end of the text") }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            index += 1
            return .string(try string())
        case UInt8(ascii: "{"):
            return .object(try object())
        case UInt8(ascii: "["):
            return .array(try array())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw failure("Unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONValue.ParseError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw failure("Unexpected end of the text") }
        let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: count)
        for offset in 0 ..< count where bytes[index + offset] != expected[offset] {
            index += offset
            throw failure("Unexpected character")
        }
        index += count
    }

    mutating func enter() throws(JSONValue.ParseError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw failure("Nested more than \(Self.maxDepth) levels deep") }
        index += 1
        skipWhitespace()
    }

    mutating func object() throws(JSONValue.ParseError) -> [String: JSONValue] {
        try enter()
        defer { depth -= 1 }
        var members: [String: JSONValue] = [:]
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return members }
        while true {
            guard index < bytes.count else { throw failure("Unexpected end of the text") }
            guard bytes[index] == UInt8(ascii: "\"") else { throw failure("Expected a string key") }
            index += 1
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("Expected `:` after an object key") }
            index += 1
            skipWhitespace()
            let value = try value()
            if members.index(forKey: key) == nil { members[key] = value }
            skipWhitespace()
            guard index < bytes.count else { throw failure("Unexpected end of the text") }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return members }
            case UInt8(ascii: "}"):
                index += 1
                return members
            default:
                throw failure("Expected `,` or `}` in an object")
            }
        }
    }

    mutating func array() throws(JSONValue.ParseError) -> [JSONValue] {
        try enter()
        defer { depth -= 1 }
        var elements: [JSONValue] = []
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return elements }
        while true {
            elements.append(try value())
            skipWhitespace()
            guard index < bytes.count else { throw failure("Unexpected end of the text") }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return elements }
            case UInt8(ascii: "]"):
                index += 1
                return elements
            default:
                throw failure("Expected `,` or `]` in an array")
            }
        }
    }

    /// A string's contents; `index` is just past its opening quote.
    mutating func string() throws(JSONValue.ParseError) -> String {
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = try utf8(UnsafeRawBufferPointer(rebasing: bytes[start ..< index]), at: start)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { return try escapedString(from: start) }
            if byte < 0x20 { throw failure("Unescaped control character in a string") }
            index += 1
        }
        throw failure("Unterminated string")
    }

    /// The rest of a string that holds escapes, from `start` (its first byte).
    mutating func escapedString(from start: Int) throws(JSONValue.ParseError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(index - start + 16)
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start ..< index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return try out.withUnsafeBytes { buffer in Result { () throws(JSONValue.ParseError) in try utf8(buffer, at: start) } }.get()
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw failure("Unterminated string") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"): append(scalar: try unicodeEscape(), to: &out)
                default:
                    index -= 1
                    throw failure("Invalid escape in a string")
                }
            default:
                if byte < 0x20 { throw failure("Unescaped control character in a string") }
                out.append(byte)
                index += 1
            }
        }
        throw failure("Unterminated string")
    }

    /// The scalar of a `\u` escape (a surrogate pair counts as one); `index` is past the `u`.
    mutating func unicodeEscape() throws(JSONValue.ParseError) -> Unicode.Scalar {
        let first = try hex4()
        if first & 0xFC00 == 0xDC00 { throw failure("A low surrogate escape without a high one") }
        guard first & 0xFC00 == 0xD800 else { return Unicode.Scalar(first)! }
        guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
            throw failure("A high surrogate escape without a low one")
        }
        index += 2
        let second = try hex4()
        guard second & 0xFC00 == 0xDC00 else { throw failure("A high surrogate escape without a low one") }
        return Unicode.Scalar(0x10000 + ((UInt32(first) - 0xD800) << 10) + (UInt32(second) - 0xDC00))!
    }

    mutating func hex4() throws(JSONValue.ParseError) -> UInt16 {
        guard bytes.count - index >= 4 else { throw failure("Unterminated `\\u` escape") }
        var code: UInt16 = 0
        for _ in 0 ..< 4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("Invalid hex digit in a `\\u` escape")
            }
            code = code << 4 | UInt16(digit)
            index += 1
        }
        return code
    }

    func append(scalar: Unicode.Scalar, to out: inout [UInt8]) {
        out.append(contentsOf: UTF8.encode(scalar)!)
    }

    func utf8(_ buffer: UnsafeRawBufferPointer, at offset: Int) throws(JSONValue.ParseError) -> String {
        guard let text = String(validating: buffer, as: UTF8.self) else {
            throw JSONValue.ParseError(offset: offset, reason: "A string is not valid UTF-8")
        }
        return text
    }

    /// A number as RFC 8259 writes it, read into a finite `Double`.
    mutating func number() throws(JSONValue.ParseError) -> Double {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < bytes.count, isDigit(bytes[index]) else { throw failure("A number without digits") }
        var whole: UInt64 = 0
        var digits = 0
        var nonzero = false
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw failure("A number with a leading zero") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) {
                if digits < 18 { whole = whole * 10 + UInt64(bytes[index] - UInt8(ascii: "0")) }
                nonzero = true
                digits += 1
                index += 1
            }
        }
        var plain = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            plain = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("A number with no digits after `.`") }
            while index < bytes.count, isDigit(bytes[index]) {
                if bytes[index] != UInt8(ascii: "0") { nonzero = true }
                index += 1
            }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            plain = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("A number with no digits in its exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        // Whole numbers up to 15 digits are exact in a Double: no need to ask strtod.
        if plain, digits <= 15 {
            let magnitude = Double(whole)
            return negative ? -magnitude : magnitude
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< index]), as: UTF8.self)
        // Too large is infinite, too small is zero from digits that are not: both out of range.
        guard let number = Double(text), number.isFinite, number != 0 || !nonzero else {
            throw JSONValue.ParseError(offset: start, reason: "The number \(text) is out of range")
        }
        return number
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
