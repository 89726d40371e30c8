import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 for the client's tests: one thread, one connection at a
/// time, `Connection: close`, answering from a script and recording every request it read.
final class ScriptedHTTPServer: @unchecked Sendable {
    struct Request: Sendable {
        let method: String
        let path: String
        /// Header names in lower case.
        let headers: [String: String]
        let body: Data
    }

    enum Reply: Sendable {
        case answer(status: Int, headers: [String: String] = [:], body: String = "")
        /// Close the connection without answering (a network failure for the client).
        case drop
    }

    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var script: [Reply]
    private var received: [Request] = []
    private let finished = DispatchSemaphore(value: 0)

    /// Listens on a free port and answers with `script`, in order (a 500 once it runs out).
    /// With `listening: false` the port is only bound, so connecting to it is refused while
    /// no other socket can take it.
    init(_ script: [Reply], listening: Bool = true) throws {
        self.script = script
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && (!listening || listen(fd, 16) == 0)
                    && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        if listening {
            Thread { [self] in serve() }.start()
        } else {
            finished.signal()
        }
    }

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// The requests read so far.
    var requests: [Request] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Stops listening and waits for the thread.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        finished.wait()
        close(listener)
    }

    private func serve() {
        defer { finished.signal() }
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var buffer = [UInt8]()
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            guard let chunk = read(connection) else { return }
            buffer += chunk
            headerEnd = Self.find(separator, in: buffer)
        }
        guard let end = headerEnd else { return }
        let lines = String(decoding: buffer[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["expect"]?.lowercased() == "100-continue" { write(connection, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        var body = Array(buffer[(end + separator.count)...])
        while body.count < length {
            guard let chunk = read(connection) else { return }
            body += chunk
        }
        let reply: Reply = lock.withLock {
            received.append(Request(method: requestLine.first.map(String.init) ?? "", path: requestLine.dropFirst().first.map(String.init) ?? "",
                                    headers: headers, body: Data(body.prefix(length))))
            return script.isEmpty ? .answer(status: 500, body: "script ran out") : script.removeFirst()
        }
        guard case .answer(let status, let extra, let text) = reply else { return }
        var head = "HTTP/1.1 \(status) Scripted\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n"
        if extra["Content-Type"] == nil { head += "Content-Type: application/json\r\n" }
        for (name, value) in extra { head += "\(name): \(value)\r\n" }
        write(connection, Array((head + "\r\n" + text).utf8))
    }

    private func read(_ connection: Int32) -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
        return count > 0 ? Array(chunk.prefix(count)) : nil
    }

    private func write(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Self.sendFlags) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    #if os(Linux)
    private static let sendFlags = Int32(MSG_NOSIGNAL)
    #else
    private static let sendFlags: Int32 = 0
    #endif

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}
