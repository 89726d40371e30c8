import Foundation
import MercatoHooks
import Testing

@Suite("JSONValue decoding")
struct JSONValueTests {
    func decode(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    /// Every kind, nested, comes back as what it is, whatever order the decoder tries them in.
    @Test func everyKindDecodesAsItself() throws {
        let value = try decode(#"{"s":"x","n":1.5,"i":-3,"t":true,"f":false,"z":null,"a":[1,"two",[false],{"k":null}],"o":{"deep":{"deeper":[]}},"e":{}}"#)
        #expect(value == .object([
            "s": .string("x"), "n": .number(1.5), "i": .number(-3), "t": .bool(true), "f": .bool(false), "z": .null,
            "a": .array([.number(1), .string("two"), .array([.bool(false)]), .object(["k": .null])]),
            "o": .object(["deep": .object(["deeper": .array([])])]), "e": .object([:]),
        ]))
        #expect(try decode("0") == .number(0))
        #expect(try decode("true") == .bool(true))
        #expect(try decode(#""1""#) == .string("1"))
        #expect(try decode("[]") == .array([]))
        #expect(try decode("null") == .null)
    }

    /// A value no kind can hold fails the whole document, at any depth, in an object or an array.
    @Test func aValueNoKindHoldsFailsTheDocument() {
        for text in [#"{"a":1e400}"#, #"{"a":{"b":[1,1e400]}}"#, #"[{"a":1e400}]"#, "1e400", #"{"a":"\ud800"}"#, #"{"a":}"#, "{"] {
            #expect(throws: (any Error).self, "\(text)") { try decode(text) }
        }
    }

    /// The direct writer gives the bytes `JSONEncoder` gives (sorted keys, slashes unescaped),
    /// for values of every kind drawn at random: keys in any script, numbers whole and not,
    /// huge and tiny, strings with every control character.
    @Test func theDirectWriterWritesWhatJSONEncoderWrites() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var random = RandomValues(seed: 0x5EED)
        for _ in 0 ..< 2_000 {
            let v = random.value()
            let written = String(decoding: try v.jsonBytes(), as: UTF8.self)
            let encoded = String(decoding: try encoder.encode(v), as: UTF8.self)
            #expect(written == encoded)
        }
        #expect(throws: JSONValue.NotRepresentable.self) { try JSONValue.array([.number(.infinity)]).jsonBytes() }
        #expect(throws: (any Error).self) { try encoder.encode(JSONValue.array([.number(.infinity)])) }
    }

    /// Strings long enough for the writer's eight-byte scan: each byte that needs an escape
    /// (and some that do not: multi-byte UTF-8, DEL, space) at every offset of a 40-byte text and
    /// at its ends, written as `JSONEncoder` writes them.
    @Test func longStringsAreEscapedAtEveryOffset() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let plain = String(repeating: "abcdefgh", count: 5)
        for special in ["\"", "\\", "\n", "\u{0}", "\u{1}", "\u{1F}", "\t", " ", "\u{7F}", "é", "€", "😀", "/"] {
            for offset in 0 ... plain.count {
                let text = String(plain.prefix(offset)) + special + String(plain.dropFirst(offset))
                let written = String(decoding: try JSONValue.string(text).jsonBytes(), as: UTF8.self)
                #expect(written == String(decoding: try encoder.encode(JSONValue.string(text)), as: UTF8.self))
            }
        }
        let dense = String(repeating: "\"\\\u{2}x", count: 9)
        #expect(String(decoding: try JSONValue.string(dense).jsonBytes(), as: UTF8.self) == String(decoding: try encoder.encode(JSONValue.string(dense)), as: UTF8.self))
    }

    /// The direct reader takes exactly what `JSONDecoder` takes into a `JSONValue`, and reads it
    /// the same: random values as `JSONEncoder` writes them (compact and pretty), and each of
    /// them damaged at random (a byte dropped, doubled, or replaced by punctuation, a digit, a
    /// letter, a control character or a byte that is not UTF-8), agreeing on every one.
    @Test func theDirectReaderReadsWhatJSONDecoderReads() throws {
        let compact = JSONEncoder()
        compact.outputFormatting = [.sortedKeys]
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted]
        var random = RandomValues(seed: 0xDEC0DE)
        let replacements = Array(#"{}[],:"\ -+.0159eEtfnul/"#.utf8) + [0x00, 0x0A, 0x1F, 0x7F, 0x80, 0xC3, 0xE2, 0xF0, 0xFF]
        var texts: [[UInt8]] = []
        for round in 0 ..< 2_000 {
            let bytes = Array(try (round % 3 == 0 ? pretty : compact).encode(random.value()))
            texts.append(bytes)
            var damaged = bytes
            let at = random.next(upTo: damaged.count)
            switch random.next(upTo: 3) {
            case 0: damaged.remove(at: at)
            case 1: damaged.insert(damaged[at], at: at)
            default: damaged[at] = replacements[random.next(upTo: replacements.count)]
            }
            texts.append(damaged)
        }
        var failures = 0
        for text in texts + Self.edgeCases.map({ Array($0.utf8) }) + Self.byteEdgeCases {
            let decoded = try? JSONDecoder().decode(JSONValue.self, from: Data(text))
            let read = try? JSONValue(parsing: text)
            // The one difference on purpose: a stray NUL byte, which JSONDecoder sometimes skips.
            let strayNUL = read == nil && text.contains(0) && decoded.map { $0.pathOfNUL() == nil } == true
            #expect(read == decoded || strayNUL, "\(String(decoding: text, as: UTF8.self).debugDescription)")
            if decoded == nil { failures += 1 }
        }
        // The damage did make texts JSONDecoder refuses, and the reader refused the same ones.
        #expect(failures > 500)
    }

    /// The first string or key holding NUL, by its path; none in a value without one, whatever
    /// else its strings hold.
    @Test func nulIsFoundByItsPathInStringsAndKeys() throws {
        let clean = try JSONValue(parsing: #"{"a": ["x", {"b": "é\u0301 ✓ 😀"}], "n": 1, "t": true, "z": null}"#)
        #expect(!clean.containsNUL && clean.pathOfNUL() == nil)
        #expect(try JSONValue(parsing: #"{"a": ["x", {"b": "y\u0000"}]}"#).pathOfNUL() == "a[1].b")
        #expect(try JSONValue(parsing: #"{"a": {"k\u0000": 1}}"#).pathOfNUL() == "a (a key)")
        #expect(try JSONValue(parsing: #"{"k\u0000": 1}"#).pathOfNUL() == "(a key)")
        #expect(JSONValue.string("\u{0}\u{301}").pathOfNUL() == "")
        #expect(JSONValue.array([.number(1), .string(String(repeating: "x", count: 5000) + "\u{0}")]).pathOfNUL() == "[1]")
    }

    /// A refusal says what was wrong and at which byte.
    @Test func theReaderSaysWhereTheTextWentWrong() throws {
        func reason(_ text: String) -> JSONValue.ParseError? {
            do { _ = try JSONValue(parsing: text); return nil } catch { return error }
        }
        #expect(reason("[1 2]") == .init(offset: 3, reason: "Expected `,` or `]` in an array"))
        #expect(reason(#"{"a" 1}"#) == .init(offset: 5, reason: "Expected `:` after an object key"))
        #expect(reason(#"{"a":1e999}"#) == .init(offset: 5, reason: "The number 1e999 is out of range"))
        #expect(reason(#"["\q"]"#) == .init(offset: 3, reason: "Invalid escape in a string"))
        #expect(reason("[\"a\u{1}\"]") == .init(offset: 3, reason: "Unescaped control character in a string"))
        #expect(reason("{} x") == .init(offset: 3, reason: "Unexpected text after the JSON value"))
        #expect(reason("") == .init(offset: 0, reason: "Unexpected end of the text"))
        #expect(reason(String(repeating: "[", count: 600))?.reason == "Nested more than 512 levels deep")
        #expect(reason("[1,2]") == nil)
        #expect(String(describing: reason("nul")!) == "Unexpected end of the text at byte 0")
        // Of a repeated key the first value stays; the later one is read (and judged) all the same.
        #expect(try JSONValue(parsing: #"{"a":1,"a":2}"#) == ["a": 1])
        #expect(reason(#"{"a":1,"a":1e999}"#) != nil)
    }

    /// Texts at the edges of the grammar, each judged by `JSONDecoder` as the reader must.
    static let edgeCases: [String] = [
        "0", "-0", "1", "-1", "10", "01", "-01", "00", "1.", ".5", "1.5", "-1.5e3", "1e", "1e+", "1E-2", "1e400", "-1e400", "1e-400", "-1e-400", "0e-400", "0.0000e-99999", "2.4e-324", "2.5e-324", "1e-330",
        "+1", "- 1", "123456789012345678901234567890", "9007199254740993", "999999999999999", "1000000000000000", "0.1e1",
        "true", "false", "null", "tru", "nul", "True", "NaN", "Infinity", "", " ", " 1 ", "\t\n\r1\r\n", "\u{b}1", "\u{c}1",
        #""""#, #""a""#, #""\""#, #""\"""#, #""\/""#, #""\b\f\n\r\t""#, #""\u0041""#, #""\u00e9""#, #""\u20AC""#, #""\ud83d\ude00""#,
        #""\ud83d""#, #""\ude00""#, #""\ud83d\u0041""#, #""\ud83dx""#, #""\u12""#, #""\u12G4""#, #""\x""#, #""\'""#, "\"a\u{1}b\"",
        "\"a\u{7f}b\"", "\"\u{0}\"", #""\u0000""#, "\"é😀中\"",
        "[]", "[ ]", "[1,]", "[1 , ]", "[1,,]", "[,]", "[,1]", "[1 2]", "[1,,2]", "[", "]", "[[[]]]", "{}", "{ }", #"{"a":1}"#, #"{"a":1,}"#, #"{"a":1,,}"#, "{,}", #"{"a" 1}"#,
        #"{a:1}"#, #"{"a":1 "b":2}"#, #"{"a":1,"a":2}"#, #"{"a":{"b":1},"a":3}"#, #"{"":0}"#, "{1:2}", #"{"a"}"#, #"{"a":}"#,
        "[1] [2]", "{} x", "1 2", #""a" "b""#, String(repeating: "[", count: 512) + String(repeating: "]", count: 512),
        String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
        String(repeating: #"{"a":"#, count: 511) + "1" + String(repeating: "}", count: 511),
    ]

    /// Byte sequences that are not text: bad UTF-8 inside and outside strings, and byte order marks.
    static let byteEdgeCases: [[UInt8]] = [
        [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
        [0x22, 0xE2, 0x82, 0xAC, 0x22], [0xFF], [0x5B, 0x80, 0x5D], [0xEF, 0xBB, 0xBF, 0x31], [0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, 0x31], [0x20, 0xEF, 0xBB, 0xBF, 0x31], [0x31, 0x00], [0x00],
        [0x22, 0x5C, 0x22, 0xC3, 0xA9, 0x5C, 0x6E, 0xFF, 0x22],
    ]

}

/// Random JSON values from a repeatable stream of numbers (xorshift64*), so a failure names a
/// value that comes again: keys in any script, numbers whole and not, huge and tiny, strings
/// with every control character.
private struct RandomValues {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next(upTo bound: Int) -> Int {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return Int((state &* 2_685_821_657_736_338_717) >> 33) % bound
    }

    static let pieces = ["a", "B", "z", "10", "9", "_", "-", "é", "e\u{301}", "ß", "ss", "😀", "/", "\"", "\\", "\n", "\u{1}", "\u{1f}",
                         "\u{7f}", "\u{2028}", " ", "\t", "\r", "\u{8}", "\u{c}", "中"]
    static let numbers: [Double] = [0, -0.0, 1, -1, 0.1, 1.5, -2.25, 1e-7, 1e21, 9e15, 8_999_999_999_999_999, 123456789.125, .leastNonzeroMagnitude,
                                    1.7976931348623157e308, 0.000123, 100.25, 4_503_599_627_370_497, -9_007_199_254_740_992]

    mutating func text() -> String {
        (0 ..< next(upTo: 5)).map { _ in Self.pieces[next(upTo: Self.pieces.count)] }.joined()
    }

    mutating func value(_ depth: Int = 0) -> JSONValue {
        switch next(upTo: depth > 3 ? 4 : 6) {
        case 0: return .null
        case 1: return .bool(next(upTo: 2) == 0)
        case 2: return .number(next(upTo: 3) == 0 ? Double(next(upTo: 1_000_000)) / 7 : Self.numbers[next(upTo: Self.numbers.count)])
        case 3: return .string(text())
        case 4: return .array((0 ..< next(upTo: 4)).map { _ in value(depth + 1) })
        default:
            var members: [(String, JSONValue)] = []
            for _ in 0 ..< next(upTo: 6) { members.append((text(), value(depth + 1))) }
            return .object(Dictionary(members) { first, _ in first })
        }
    }
}
