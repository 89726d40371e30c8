import Foundation
import MercatoSDK
import Testing

/// Against a real Mercato server. `MERCATO_SDK_E2E` names a JSON file
/// `{"base_url", "install_id", "secret"}` for an install of an HMAC app with scope `kv:write`
/// (what `sdk/swift/test` makes with `bench/tools/setup_tenant.py`).
struct EndToEndConfig: Decodable {
    let baseURL: String
    let installID: String
    let secret: String

    enum CodingKeys: String, CodingKey {
        case baseURL = "base_url"
        case installID = "install_id"
        case secret
    }

    static var path: String? { ProcessInfo.processInfo.environment["MERCATO_SDK_E2E"] }

    static func load() throws -> EndToEndConfig {
        let path = try #require(path)
        let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
        return try JSONDecoder().decode(EndToEndConfig.self, from: data)
    }
}

@Suite("End to end against a Mercato server", .enabled(if: EndToEndConfig.path != nil, "set MERCATO_SDK_E2E to run"))
struct EndToEndTests {
    let config: EndToEndConfig
    let client: MercatoClient

    init() throws {
        config = try EndToEndConfig.load()
        client = MercatoClient(baseURL: try #require(URL(string: config.baseURL)), installID: config.installID,
                               signer: try CommandSigner(secret: config.secret))
    }

    @Test("a signed ping answers 200; the same webhook-id again is the stored answer")
    func pingAndReplay() async throws {
        let first = try await client.command("ping")
        #expect(first.status == 200)
        #expect(first.result["pong"] == true)
        #expect(first.json["status"] == "succeeded")
        #expect(first.commandID?.hasPrefix("cmd_") == true)
        #expect(first.replayed == false)
        #expect(first.rateLimit != nil)
        #expect(first.requestID != nil)

        let again = try await client.command("ping", webhookID: first.webhookID)
        #expect(again.status == 200)
        #expect(again.replayed == true)
        #expect(again.commandID == first.commandID)
        #expect(again.json == first.json)
    }

    @Test("a signature under another secret is invalid_signature")
    func wrongSignature() async throws {
        let stranger = "whsec_" + Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let impostor = MercatoClient(baseURL: client.baseURL, installID: config.installID, signer: try CommandSigner(secret: stranger))
        let error = await #expect(throws: MercatoError.self) { try await impostor.command("ping") }
        #expect(error?.code == "invalid_signature")
        #expect(error?.status == 401)
        #expect(error?.requestID != nil)
        #expect(error?.attempts == 1)
    }

    @Test("the same webhook-id with another body is idempotency_conflict")
    func conflict() async throws {
        let first = try await client.command("kv.set", args: ["key": "sdk-swift", "value": ["n": 1]])
        #expect(first.result["key"] == "sdk-swift")
        let error = await #expect(throws: MercatoError.self) {
            try await client.command("kv.set", args: ["key": "sdk-swift", "value": ["n": 2]], webhookID: first.webhookID)
        }
        #expect(error?.code == "idempotency_conflict")
        #expect(error?.status == 409)
    }

    @Test("a command needing a scope the app lacks is scope_missing, naming the scope")
    func scopeMissing() async throws {
        let error = await #expect(throws: MercatoError.self) { try await client.command("kv.get", args: ["key": "sdk-swift"]) }
        #expect(error?.code == "scope_missing")
        #expect(error?.status == 403)
        #expect(error?.detail?.contains("kv:read") == true)
    }
}
