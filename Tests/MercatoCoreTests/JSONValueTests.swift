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
        var random = SeededRandom(seed: 0x5EED)
        let pieces = ["a", "B", "z", "10", "9", "_", "-", "é", "e\u{301}", "ß", "ss", "😀", "/", "\"", "\\", "\n", "\u{1}", "\u{1f}",
                      "\u{7f}", "\u{2028}", " ", "\t", "\r", "\u{8}", "\u{c}", "中"]
        func text() -> String { (0 ..< random.next(upTo: 5)).map { _ in pieces[random.next(upTo: pieces.count)] }.joined() }
        let numbers: [Double] = [0, -0.0, 1, -1, 0.1, 1.5, -2.25, 1e-7, 1e21, 9e15, 8_999_999_999_999_999, 123456789.125, 5e-324,
                                 1.7976931348623157e308, 0.000123, 100.25, 4_503_599_627_370_497, -9_007_199_254_740_993]
        func value(_ depth: Int) -> JSONValue {
            switch random.next(upTo: depth > 3 ? 4 : 6) {
            case 0: return .null
            case 1: return .bool(random.next(upTo: 2) == 0)
            case 2: return .number(random.next(upTo: 3) == 0 ? Double(random.next(upTo: 1_000_000)) / 7 : numbers[random.next(upTo: numbers.count)])
            case 3: return .string(text())
            case 4: return .array((0 ..< random.next(upTo: 4)).map { _ in value(depth + 1) })
            default: return .object(Dictionary((0 ..< random.next(upTo: 6)).map { _ in (text(), value(depth + 1)) }) { first, _ in first })
            }
        }
        for _ in 0 ..< 2_000 {
            let v = value(0)
            let written = String(decoding: try v.jsonBytes(), as: UTF8.self)
            let encoded = String(decoding: try encoder.encode(v), as: UTF8.self)
            #expect(written == encoded)
        }
        #expect(throws: JSONValue.NotRepresentable.self) { try JSONValue.array([.number(.infinity)]).jsonBytes() }
        #expect(throws: (any Error).self) { try encoder.encode(JSONValue.array([.number(.infinity)])) }
    }
}

/// A repeatable stream of numbers (xorshift64*), so a failure names a value that comes again.
private struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(upTo bound: Int) -> Int {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return Int((state &* 2_685_821_657_736_338_717) >> 33) % bound
    }
}
