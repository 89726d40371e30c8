import Foundation
@testable import MercatoStorage
import Testing

/// Lists kept in one column read back as they were written, by the quote scan or by JSONDecoder.
@Suite("Stored lists")
struct StoredListTests {
    @Test func everyListReadsBackAsWritten() throws {
        let samples: [[String]] = [
            [], [""], ["kv:write"], ["kv:read", "kv:write", "tasks:write"], ["api_key", "webhook secret", "ünïcödé ☃"],
            ["quote \" inside"], ["back\\slash"], ["tab\tand\nnewline"], ["a,b", "[c]", "\"d\""], ["\u{1}"],
        ]
        var random = SystemRandomNumberGenerator()
        var lists = samples
        let alphabet = Array("ab:_- ,[]\"\\\u{7}é☃")
        for _ in 0..<300 {
            lists.append((0..<Int.random(in: 0...4, using: &random)).map { _ in
                String((0..<Int.random(in: 0...6, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            })
        }
        for list in lists {
            let text = StoredList.text(list)
            #expect(try StoredList.decode(text) == list, "\(text)")
            #expect(try StoredList.decode(text) == JSONDecoder().decode([String].self, from: Data(text.utf8)))
        }
    }

    @Test func whatIsNotAListOfStringsIsRefused() throws {
        for text in ["", "[", "]", "[\"a\"\"b\"]", "[\"a\", 1]", "{\"a\":1}", "[\"a\"", "null", "[,\"a\"]"] {
            #expect(throws: StorageError.self, "\(text)") { try StoredList.decode(text) }
        }
        // Written by hand with spaces: still a list (read by JSONDecoder).
        #expect(try StoredList.decode("[ \"a\" , \"b\" ]") == ["a", "b"])
    }
}
