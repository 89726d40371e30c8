// The ceiling for bench/run: a bare Hummingbird 2 server that does only what no command
// server can skip. For `POST /api/v1/apps/commands` it verifies the Standard Webhooks v1
// signature (HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}` under the
// `whsec_` secret in CEILING_SECRET, libsodium, constant-time compare, ±300 s window) and
// answers a fixed small JSON body. `GET /api/v1/installs/{id}` answers a fixed body with no
// work at all (the ceiling of a read). No storage, no JSON parsing, no logging, no metrics.
//
// It is also the delivery scenario's sink: `POST /sink` verifies the Standard Webhooks
// signature of a delivery with CEILING_WEBHOOK_SECRET (every `v1,` entry is tried, so both
// secrets of a rotation pass), counts it as valid or invalid and answers 200 with an empty
// body; `GET /sink/stats` answers `{"valid": n, "invalid": m, "first_ms": t, "last_ms": t}`
// (Unix ms of the first and the latest valid delivery).
//
// With CEILING_DATABASE (a SQLite file path) it is the durable floor instead (Floor.swift): a
// verified command is also checked against its stored answer and answered only after its log
// row and idempotency row are committed.
//
// Environment: CEILING_PORT (default 8090), CEILING_SECRET (whsec_<base64>, required),
// CEILING_WEBHOOK_SECRET (whsec_<base64>, optional: the sink counts every delivery invalid without it),
// CEILING_DATABASE (optional: the durable floor's SQLite file).
import CSodium
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// What the sink has received.
final class SinkCounts: Sendable {
    let valid = Atomic<Int>(0)
    let invalid = Atomic<Int>(0)
    let firstMs = Atomic<Int>(0)
    let lastMs = Atomic<Int>(0)

    func record(valid ok: Bool) {
        guard ok else { invalid.wrappingAdd(1, ordering: .relaxed); return }
        let now = Int(Date().timeIntervalSince1970 * 1000)
        _ = firstMs.compareExchange(expected: 0, desired: now, ordering: .relaxed)
        lastMs.store(now, ordering: .relaxed)
        valid.wrappingAdd(1, ordering: .relaxed)
    }

    var json: String {
        #"{"valid": \#(valid.load(ordering: .relaxed)), "invalid": \#(invalid.load(ordering: .relaxed)), "first_ms": \#(firstMs.load(ordering: .relaxed)), "last_ms": \#(lastMs.load(ordering: .relaxed))}"#
    }
}

/// Standard Webhooks v1 verification with libsodium.
struct Verifier: Sendable {
    let key: [UInt8]

    /// HMAC-SHA256 of `{id}.{timestamp}.{body}`, fed to libsodium in three parts (no copy of the body).
    func mac(id: String, timestamp: String, body: ByteBuffer) -> [UInt8] {
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        crypto_auth_hmacsha256_init(&state, key, key.count)
        let prefix = Array("\(id).\(timestamp).".utf8)
        crypto_auth_hmacsha256_update(&state, prefix, UInt64(prefix.count))
        body.withUnsafeReadableBytes { raw in
            _ = crypto_auth_hmacsha256_update(&state, raw.bindMemory(to: UInt8.self).baseAddress, UInt64(raw.count))
        }
        crypto_auth_hmacsha256_final(&state, &out)
        return out
    }

    /// `true` when some `v1,<base64>` entry of the header equals the MAC (sodium_memcmp, constant time).
    func verify(header: String, id: String, timestamp: String, body: ByteBuffer) -> Bool {
        let expected = mac(id: id, timestamp: timestamp, body: body)
        for entry in header.split(separator: " ").prefix(16) where entry.hasPrefix("v1,") {
            guard let given = Data(base64Encoded: String(entry.dropFirst(3))).map(Array.init), given.count == expected.count else { continue }
            if sodium_memcmp(given, expected, expected.count) == 0 { return true }
        }
        return false
    }
}

@main
struct Ceiling {
    static func main() async throws {
        guard sodium_init() >= 0 else { fatalError("sodium_init failed") }
        let environment = ProcessInfo.processInfo.environment
        let port = Int(environment["CEILING_PORT"] ?? "") ?? 8090
        guard let secret = environment["CEILING_SECRET"],
              let key = Data(base64Encoded: secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret).map(Array.init)
        else { fatalError("CEILING_SECRET must be whsec_<base64>") }
        let verifier = Verifier(key: key)
        let sinkVerifier = environment["CEILING_WEBHOOK_SECRET"].flatMap { secret in
            Data(base64Encoded: secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret).map { Verifier(key: Array($0)) }
        }
        let sink = SinkCounts()
        let floor = environment["CEILING_DATABASE"].map { DurableFloor(path: $0) }

        let okBody = ByteBuffer(string: #"{"command":"ping","status":"succeeded","result":{"pong":true}}"#)
        let inboundBody = ByteBuffer(string: #"{"id":"inb_000000000000000000000000","duplicate":false}"#)
        let deniedBody = ByteBuffer(string: #"{"code":"invalid_signature","status":401}"#)
        let busyBody = ByteBuffer(string: #"{"code":"idempotency_in_progress","status":409}"#)
        let installBody = ByteBuffer(string: #"{"id":"ins_00000000000000000000000000","app":"bench-app","status":"active","scopes":[],"config":{}}"#)
        let webhookID = HTTPField.Name("webhook-id")!
        let webhookTimestamp = HTTPField.Name("webhook-timestamp")!
        let webhookSignature = HTTPField.Name("webhook-signature")!

        let router = Router()
        router.get("healthz") { _, _ in "ok" }
        router.get("api/v1/installs/{id}") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: installBody))
        }
        // A signed request (a command, or a provider's Standard Webhooks event): verified, answered.
        @Sendable func signed(_ request: Request, limit: Int, answer: ByteBuffer) async throws -> Response {
            let body = try await request.body.collect(upTo: limit)
            guard let id = request.headers[webhookID], let timestamp = request.headers[webhookTimestamp],
                  let signature = request.headers[webhookSignature], let seconds = Double(timestamp),
                  abs(Date().timeIntervalSince1970 - seconds) <= 300,
                  verifier.verify(header: signature, id: id, timestamp: timestamp, body: body)
            else {
                return Response(status: .unauthorized, headers: [.contentType: "application/json"], body: .init(byteBuffer: deniedBody))
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: answer))
        }
        let okText = String(buffer: okBody)
        router.post("api/v1/apps/commands") { request, _ -> Response in
            guard let floor else { return try await signed(request, limit: 256 * 1024, answer: okBody) }
            let started = ContinuousClock.now
            let body = try await request.body.collect(upTo: 256 * 1024)
            guard let id = request.headers[webhookID], let timestamp = request.headers[webhookTimestamp],
                  let signature = request.headers[webhookSignature], let seconds = Double(timestamp),
                  abs(Date().timeIntervalSince1970 - seconds) <= 300,
                  verifier.verify(header: signature, id: id, timestamp: timestamp, body: body)
            else {
                return Response(status: .unauthorized, headers: [.contentType: "application/json"], body: .init(byteBuffer: deniedBody))
            }
            guard floor.hold(id) else {
                return Response(status: .conflict, headers: [.contentType: "application/json"], body: .init(byteBuffer: busyBody))
            }
            defer { floor.release(id) }
            if let stored = floor.stored(webhookID: id) {
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: stored)))
            }
            let hash = body.withUnsafeReadableBytes { DurableFloor.sha256Hex($0) }
            let elapsed = ContinuousClock.now - started
            await floor.record(.init(id: floor.makeID(), webhookID: id, bodyHash: hash, response: okText,
                                     durationUs: elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000,
                                     createdAt: Int64(Date().timeIntervalSince1970 * 1000)))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: okBody))
        }
        router.post("api/v1/inbound/{install}/{provider}") { request, _ in try await signed(request, limit: 1024 * 1024, answer: inboundBody) }
        router.post("sink") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1024 * 1024)
            var ok = false
            if let sinkVerifier, let id = request.headers[webhookID], let timestamp = request.headers[webhookTimestamp],
               let signature = request.headers[webhookSignature] {
                ok = sinkVerifier.verify(header: signature, id: id, timestamp: timestamp, body: body)
            }
            sink.record(valid: ok)
            return Response(status: .ok)
        }
        router.get("sink/stats") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: sink.json)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "ceiling"))
        try await app.runService()
    }
}
