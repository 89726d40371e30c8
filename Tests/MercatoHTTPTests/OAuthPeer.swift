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
    private let pid: pid_t

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Interop/peers/oauth_server.py").standardizedFileURL.path

    /// A client that never follows redirects: the test plays the browser.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private init(pid: pid_t, port: Int, secret: String) {
        self.pid = pid
        self.port = port
        self.secret = secret
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// Starts the peer for a server whose redirect URI is `redirectURI`, runs `body`, stops it.
    static func with<R>(redirectURI: String, accessTokenTTL: Int = 3600, _ body: (OAuthPeer) async throws -> R) async throws -> R {
        let secret = "peer-secret-" + UUID().uuidString
        let (pid, output) = try spawn(["python3", script, "--port", "0", "--client-id", "mercato-test-client", "--client-secret", secret,
                                       "--redirect-uri", redirectURI, "--access-token-ttl", String(accessTokenTTL)])
        let line = await Task.detached { () -> String in
            var data = Data()
            while !data.contains(UInt8(ascii: "\n")) {
                let chunk = output.availableData
                if chunk.isEmpty { break }
                data += chunk
            }
            return String(decoding: data, as: UTF8.self)
        }.value
        guard line.hasPrefix("LISTENING "), let port = Int(line.dropFirst(10).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            stop(pid)
            throw PeerError("the OAuth peer did not start (is Authlib installed? scripts/test installs it): \(line)")
        }
        let peer = OAuthPeer(pid: pid, port: port, secret: secret)
        defer { stop(pid) }
        return try await body(peer)
    }

    /// `/usr/bin/env` with `arguments`, its standard output a pipe, through posix_spawn:
    /// Foundation's `Process.run()` on Linux (6.3.1) over-reads a `dirent` while it lists
    /// `/proc/self/fd` and crashed the suite now and then (swift-corelibs-foundation#5472).
    static func spawn(_ arguments: [String]) throws -> (pid_t, FileHandle) {
        // One at a time, each pipe close-on-exec before the next child starts: a peer started
        // by another test must not hold this one's pipe open.
        try spawning.withLock { _ in
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else { throw PeerError("pipe() failed: errno \(errno)") }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
            let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
            defer { for arg in argv { free(arg) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, environ)
            close(ends[1])
            guard spawned == 0 else {
                close(ends[0])
                throw PeerError("posix_spawn failed: \(spawned)")
            }
            return (pid, FileHandle(fileDescriptor: ends[0], closeOnDealloc: true))
        }
    }

    static let spawning = Mutex(())

    /// SIGKILL, then reaped: a child inherits ignored signals, and the server under test
    /// ignores SIGTERM (ServiceLifecycle handles it), so the peer would ignore a SIGTERM.
    static func stop(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
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
