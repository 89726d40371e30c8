import Foundation
import MercatoCrypto
import Testing

/// libsodium's base64 decoder takes what Foundation's takes and refuses what it refuses, but
/// for one case, checked apart: a last character with bits the bytes do not use.
@Suite("Base64 through libsodium")
struct Base64Tests {
    @Test func decodesWhatFoundationDecodes() {
        var generator = SystemRandomNumberGenerator()
        for length in 0 ..< 80 {
            let bytes = (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let text = Data(bytes).base64EncodedString()
            #expect(Base64.decode(text) == bytes)
            #expect(Base64.decode("x" + text + "y").map(Array.init) == Data(base64Encoded: "x" + text + "y").map(Array.init))
            #expect(Base64.decode(text.dropFirst(0)) == bytes)
        }
    }

    @Test func refusesWhatFoundationRefuses() {
        let alphabet = Array("ABCab019+/=-_ \n.é")
        var generator = SystemRandomNumberGenerator()
        var refused = 0
        for _ in 0 ..< 20_000 {
            let text = String((0 ..< Int.random(in: 1 ... 12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let ours = Base64.decode(text), foundation = Data(base64Encoded: text).map(Array.init)
            if ours == nil, let foundation, Data(foundation).base64EncodedString() != text {
                continue // non-canonical last character: refused here only (see `unusedBitsAndBytesPastASCIIAreRefused`)
            }
            #expect(ours == foundation, "\(text.debugDescription)")
            if ours == nil { refused += 1 }
        }
        #expect(refused > 10_000)
        // A signature header's entry or a secret decoded in place, from part of a longer text.
        let header = "v1,AAEC v1a,AwQF"
        #expect(Base64.decode(header.dropFirst(3).prefix(4)) == [0, 1, 2])
    }

    @Test func unusedBitsAndBytesPastASCIIAreRefused() {
        #expect(Base64.decode("QQ==") == [0x41])
        #expect(Base64.decode("QR==") == nil)
        #expect(Base64.decode("QUI=") == [0x41, 0x42])
        #expect(Base64.decode("QUJ=") == nil)
        #expect(Base64.decode("QQ") == nil)
        #expect(Base64.decode("") == [])
        // libsodium 1.0.18 alone would take these four bytes as base64 of [255, 255, 255].
        #expect(Base64.decode("éé") == nil)
    }
}
