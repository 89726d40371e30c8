import Crypto
import Foundation
import MercatoSDK
import Testing

/// The README's examples, compiled (and the ones that need no server, run), so they stay true.
enum ReadmeExamples {
    static func sendCommand() async throws {
        let client = MercatoClient(
            baseURL: URL(string: "https://mercato.example.com")!,
            installID: "ins_01jd...",
            signer: try CommandSigner(secret: ProcessInfo.processInfo.environment["MERCATO_COMMAND_SECRET"]!)
        )

        let pong = try await client.command("ping")
        print(pong.result)

        let saved = try await client.command("kv.set", args: ["key": "greeting", "value": ["text": "hello", "count": 2]])
        print(saved.result["version"]?.integerValue ?? 0)
        print(saved.rateLimit?.remaining ?? 0)

        do {
            _ = try await client.command("kv.get", args: ["key": "greeting"])
        } catch let error as MercatoError {
            switch error.code {
            case "scope_missing": print("ask the org to grant:", error.detail ?? "")
            case "rate_limited": print("slow down; retry after", error.retryAfter ?? 1, "s")
            case "invalid_signature": print("wrong or rotated secret; request", error.requestID ?? "?")
            default: print(error)
            }
        } catch let error as MercatoClientError {
            print(error.kind, error.webhookID ?? "")
        }

        let id = "order-1042-notify"
        let answer = try await client.command("notifications.create", args: ["title": "Order shipped"], webhookID: id)
        if answer.replayed { print("already done earlier") }
        _ = MercatoClient(baseURL: client.baseURL, installID: client.installID, signer: client.signer, retryPolicy: RetryPolicy(maxAttempts: 2))
        _ = MercatoClient(baseURL: client.baseURL, installID: client.installID, signer: client.signer, retryPolicy: .none)
    }

    static func ed25519() throws -> String {
        let key = Curve25519.Signing.PrivateKey()
        let signer = CommandSigner(privateKey: key)
        return signer.publicKey!
    }

    static func firstTimeSeen(_ id: String) -> Bool { true }

    static func receive(webhookSecret: String, headers: [String: String], rawBody: Data) throws -> Int {
        let verifier = try WebhookVerifier(secrets: [webhookSecret])

        func receive(headers: [String: String], rawBody: Data) -> Int {
            do {
                let webhook = try verifier.verify(headers: headers, body: rawBody)
                guard firstTimeSeen(webhook.id) else { return 200 }
                let event = try webhook.event()
                print(event.type, event.data)
                return 200
            } catch let error as WebhookVerificationError {
                print(error.reason)
                return 401
            } catch {
                return 400
            }
        }
        return receive(headers: headers, rawBody: rawBody)
    }

    static func signByHand(signer: CommandSigner) throws -> SignedHeaders {
        let body = try MercatoClient.commandBody(installID: "ins_01jd...", command: "ping", args: [:])
        return signer.headers(for: body)
    }
}

@Suite("README examples")
struct ReadmeExampleTests {
    @Test("the webhook receiver answers 200 for a signed event and 401 otherwise")
    func receiver() throws {
        let secret = "whsec_" + Data(repeating: 42, count: 32).base64EncodedString()
        let body = Data(#"{"type":"app.installed","timestamp":"2026-01-01T00:00:00Z","data":{"install_id":"ins_1"}}"#.utf8)
        let headers = try CommandSigner(secret: secret).headers(for: body).dictionary
        #expect(try ReadmeExamples.receive(webhookSecret: secret, headers: headers, rawBody: body) == 200)
        #expect(try ReadmeExamples.receive(webhookSecret: secret, headers: headers, rawBody: body + Data(" ".utf8)) == 401)
        #expect(try ReadmeExamples.ed25519().hasPrefix("whpk_"))
        #expect(try ReadmeExamples.signByHand(signer: try CommandSigner(secret: secret)).signature.hasPrefix("v1,"))
    }
}
