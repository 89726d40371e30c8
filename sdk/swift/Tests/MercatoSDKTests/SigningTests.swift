import Crypto
import Foundation
import MercatoSDK
import Testing

@Suite("CommandSigner and WebhookVerifier")
struct SigningTests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()
    static let fixedNow = Date(timeIntervalSince1970: 1_767_225_600)

    @Test("the headers carry the clock's whole seconds and a valid generated id")
    func headers() throws {
        let signer = try CommandSigner(secret: Self.secret, now: { Date(timeIntervalSince1970: 1_767_225_600.9) })
        let body = Data(#"{"install_id":"ins_1","command":"ping","args":{}}"#.utf8)
        let headers = signer.headers(for: body)
        #expect(headers.timestamp == 1_767_225_600)
        #expect(headers.webhookID.hasPrefix("msg_"))
        #expect(CommandSigner.isValidWebhookID(headers.webhookID))
        #expect(headers.signature == signer.signature(for: body, webhookID: headers.webhookID, timestamp: 1_767_225_600))
        #expect(headers.dictionary["webhook-timestamp"] == "1767225600")
        #expect(signer.headers(for: body, webhookID: "retry-7").webhookID == "retry-7")
        #expect(signer.headers(for: body).webhookID != headers.webhookID)
        #expect(signer.publicKey == nil)
    }

    @Test("what one signs the other verifies, for HMAC and Ed25519")
    func roundTrip() throws {
        let privateKey = Curve25519.Signing.PrivateKey()
        let ed = CommandSigner(privateKey: privateKey, now: { Self.fixedNow })
        let mac = try CommandSigner(secret: Self.secret, now: { Self.fixedNow })
        let verifier = try WebhookVerifier(secrets: [Self.secret], publicKeys: [try #require(ed.publicKey)], now: { Self.fixedNow })
        let body = Data("{\"type\":\"app.installed\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"data\":{\"é\":1}}".utf8)
        for signer in [ed, mac] {
            let headers = signer.headers(for: body)
            let verified = try verifier.verify(headers: headers.dictionary, body: body)
            #expect(verified.id == headers.webhookID)
            #expect(verified.timestamp == Self.fixedNow)
            let event = try verified.event()
            #expect(event.type == "app.installed")
            #expect(event.data["é"] == 1)
        }
        #expect(ed.publicKey == "whpk_" + privateKey.publicKey.rawRepresentation.base64EncodedString())
    }

    @Test("header names match in any case; a missing header is named")
    func missingHeaders() throws {
        let signer = try CommandSigner(secret: Self.secret, now: { Self.fixedNow })
        let verifier = try WebhookVerifier(secrets: [Self.secret], now: { Self.fixedNow })
        let body = Data("{}".utf8)
        let headers = signer.headers(for: body, webhookID: "msg_x")
        try verifier.verify(headers: ["Webhook-Id": "msg_x", "WEBHOOK-TIMESTAMP": String(headers.timestamp),
                                      "webhook-Signature": headers.signature], body: body)
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            var partial = headers.dictionary
            partial[name] = nil
            let error = #expect(throws: WebhookVerificationError.self) { try verifier.verify(headers: partial, body: body) }
            #expect(error?.reason == .missingHeader)
            #expect(error?.header == name)
        }
    }

    @Test("a tampered body, an old timestamp, a rotated-out secret are refused, with reasons and no secret in the text")
    func refusals() throws {
        let signer = try CommandSigner(secret: Self.secret, now: { Self.fixedNow })
        let body = Data(#"{"a":1}"#.utf8)
        let headers = signer.headers(for: body)
        let verifier = try WebhookVerifier(secrets: [Self.secret], now: { Self.fixedNow.addingTimeInterval(301) })
        let late = #expect(throws: WebhookVerificationError.self) { try verifier.verify(headers: headers.dictionary, body: body) }
        #expect(late?.reason == .timestampOutOfWindow)

        let onTime = try WebhookVerifier(secrets: [Self.secret], now: { Self.fixedNow.addingTimeInterval(300) })
        let tampered = #expect(throws: WebhookVerificationError.self) {
            try onTime.verify(headers: headers.dictionary, body: Data(#"{"a":2}"#.utf8))
        }
        #expect(tampered?.reason == .noMatchingSignature)

        let other = "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()
        let rotated = try WebhookVerifier(secrets: [other], now: { Self.fixedNow })
        let refused = #expect(throws: WebhookVerificationError.self) { try rotated.verify(headers: headers.dictionary, body: body) }
        #expect(refused?.reason == .noMatchingSignature)
        for error in [late, tampered, refused].compactMap({ $0 }) {
            let text = "\(error) \(error.localizedDescription)"
            #expect(!text.contains(Self.secret.dropFirst(6)))
            #expect(!text.contains(other.dropFirst(6)))
        }
        // During a rotation both secrets are given and the old signature still verifies.
        try WebhookVerifier(secrets: [other, Self.secret], now: { Self.fixedNow }).verify(headers: headers.dictionary, body: body)
    }

    @Test("malformed credentials are refused without echoing them")
    func malformedCredentials() {
        let bad = "whsec_not base64 at all!"
        let error = #expect(throws: CredentialError.self) { try CommandSigner(secret: bad) }
        #expect(error?.kind == .malformedSecret)
        #expect(!"\(String(describing: error))".contains("not base64 at all"))
        let key = #expect(throws: CredentialError.self) { try WebhookVerifier(publicKeys: ["whpk_" + Data(count: 31).base64EncodedString()]) }
        #expect(key?.kind == .malformedPublicKey)
        #expect(throws: CredentialError.self) { try CommandSigner(ed25519Seed: Data(count: 16).base64EncodedString()) }
        #expect(throws: CredentialError.self) { try WebhookVerifier(secrets: ["whsec_"]) }
    }
}

@Suite("JSON bodies")
struct JSONBodyTests {
    @Test("a command body has install_id, command, args in that order, args' keys sorted")
    func commandBody() throws {
        let args: [String: JSONValue] = ["value": ["z": true, "a": [1, 2.5, nil, "x"]], "key": "greeting"]
        let body = try MercatoClient.commandBody(installID: "ins_1", command: "kv.set", args: args)
        #expect(String(decoding: body, as: UTF8.self)
            == #"{"install_id":"ins_1","command":"kv.set","args":{"key":"greeting","value":{"a":[1,2.5,null,"x"],"z":true}}}"#)
        #expect(try MercatoClient.commandBody(installID: "ins_1", command: "ping", args: [:])
            == Data(#"{"install_id":"ins_1","command":"ping","args":{}}"#.utf8))
    }

    @Test("strings are escaped and everything reads back as it was")
    func roundTrip() throws {
        let value: JSONValue = ["text": "quote \" backslash \\ newline \n tab \t bell \u{07} é 😀 </script>",
                                "big": .integer(9_007_199_254_740_993), "small": 1e-7, "neg": -3, "whole": 2.0, "empty": [:]]
        let data = try value.jsonData()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#"\u0007"#))
        #expect(text.contains(#""whole":2"#))
        #expect(try JSONValue(parsing: data) == value.normalized)
        #expect(throws: MercatoClientError.self) { try JSONValue.number(.nan).jsonData() }
    }
}

extension JSONValue {
    /// Whole doubles come back as integers.
    var normalized: JSONValue {
        switch self {
        case .number(let value): if let whole = Int64(exactly: value) { return .integer(whole) } else { return self }
        case .array(let elements): return .array(elements.map(\.normalized))
        case .object(let members): return .object(members.mapValues(\.normalized))
        default: return self
        }
    }
}
