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
}
