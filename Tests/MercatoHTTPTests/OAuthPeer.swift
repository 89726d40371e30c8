import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// The Authlib authorization server of `Tests/Interop/peers/oauth_server.py`, started as a
/// child process on a free loopback port (scripts/test installs Authlib and Flask).
final class OAuthPeer: Sendable {
    let port: Int
    let clientID = "mercato-test-client"
    let secret: String
    private let process: Process

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Interop/peers/oauth_server.py").standardizedFileURL.path

    /// A client that never follows redirects: the test plays the browser.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private init(process: Process, port: Int, secret: String) {
        self.process = process
        self.port = port
        self.secret = secret
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// Serialises `Process.run()` across the tests that start peers concurrently.
    static let launching = Mutex(())

    /// Starts the peer for a server whose redirect URI is `redirectURI`, runs `body`, stops it.
    static func with<R>(redirectURI: String, accessTokenTTL: Int = 3600, _ body: (OAuthPeer) async throws -> R) async throws -> R {
        let secret = "peer-secret-" + UUID().uuidString
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--port", "0", "--client-id", "mercato-test-client", "--client-secret", secret,
                             "--redirect-uri", redirectURI, "--access-token-ttl", String(accessTokenTTL)]
        let output = Pipe()
        process.standardOutput = output
        // One launch at a time: Foundation's Process.run crashed (a bad memcpy inside it) when
        // tests running in parallel started peers at the same moment.
        try Self.launching.withLock { _ in try process.run() }
        let line = await Task.detached { () -> String in
            var data = Data()
            while !data.contains(UInt8(ascii: "\n")) {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                data += chunk
            }
            return String(decoding: data, as: UTF8.self)
        }.value
        guard line.hasPrefix("LISTENING "), let port = Int(line.dropFirst(10).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGKILL)
            throw PeerError("the OAuth peer did not start (is Authlib installed? scripts/test installs it): \(line)")
        }
        let peer = OAuthPeer(process: process, port: port, secret: secret)
        defer {
            // SIGKILL: a child inherits ignored signals, and the server under test ignores
            // SIGTERM (ServiceLifecycle handles it), so the peer would ignore a terminate().
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return try await body(peer)
    }

    /// The provider definition `PUT /api/v1/providers/{key}` takes for this peer.
    func providerBody(tokenAuthMethod: String = "client_secret_basic") -> [String: Any] {
        [
            "name": "Authlib test server", "authorize_url": "\(base)/authorize", "token_url": "\(base)/token",
            "revoke_url": "\(base)/revoke", "userinfo_url": "\(base)/userinfo", "scopes": ["profile"], "scope_separator": " ",
            "pkce": true, "token_auth_method": tokenAuthMethod, "account_id_field": "sub", "account_name_field": "name",
            "client_id": clientID, "client_secret": secret,
        ]
    }

    struct PeerError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// GET without following redirects: status, `Location`, body.
    func get(_ url: String, headers: [(String, String)] = []) async throws -> (status: Int, location: String?, body: String) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await Self.http.execute(request, timeout: .seconds(15))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers.first(name: "Location"), String(buffer: body))
    }

    func json(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await Self.http.execute(request, timeout: .seconds(15))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any]) ?? [:]
    }

    func stats() async throws -> [String: Any] { try await json(.GET, "/_stats") }
    func counter(_ name: String) async throws -> Int { try await stats()[name] as? Int ?? -1 }
    func control(_ body: [String: Any]) async throws { _ = try await json(.POST, "/_control", body) }

    /// Every token text the peer issued.
    func issued() async throws -> [String] {
        let answer = try await json(.GET, "/_issued")
        return (answer["access_tokens"] as? [String] ?? []) + (answer["refresh_tokens"] as? [String] ?? [])
    }
}
