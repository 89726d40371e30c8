import Foundation
import MercatoHooks
public import Logging
import Synchronization

/// One JSON object per line on standard output (`ts`, `level`, `msg`, `label`, then metadata).
/// Metadata whose key names a secret (token, secret, password, authorization, cookie,
/// ciphertext, key material) is written as `[redacted]`, whatever a caller passes.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    /// Where lines go; `nil`: standard output, written from the line's bytes.
    private let sink: (@Sendable (String) -> Void)?

    /// Words that make a metadata key secret.
    static let secretWords = ["token", "secret", "password", "authorization", "cookie", "ciphertext", "master_key", "api_key", "private_key", "credential"]

    public init(label: String, level: Logger.Level = .info, sink: (@Sendable (String) -> Void)? = nil) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes the line a request ends with (``RequestLine``) as ``log(event:)`` would write
    /// `info("request", metadata: [method, route, status, duration_ms, request_id])`, byte for
    /// byte, without a metadata dictionary, a field list or a sort: the keys are known, sorted
    /// and not secret. `false` when this handler has metadata of its own (the caller then logs
    /// as usual); `true` when written or below the handler's level.
    public func logRequest(_ line: RequestLine) -> Bool {
        guard metadata.isEmpty else { return false }
        guard logLevel <= .info else { return true }
        var out: [UInt8] = []
        out.reserveCapacity(192 + line.route.utf8.count)
        func field(_ key: StaticString, _ value: String, first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            key.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
            JSONValue.writeString(value, into: &out)
        }
        out.append(UInt8(ascii: "{"))
        field("duration_ms", line.durationMilliseconds.description, first: true)
        field("label", label)
        field("level", Logger.Level.info.rawValue)
        field("method", line.method)
        field("msg", "request")
        field("request_id", line.requestID)
        field("route", line.route)
        field("status", String(line.status))
        field("ts", PluginSupport.timestamp())
        out.append(UInt8(ascii: "}"))
        write(out)
        return true
    }

    /// What ``logRequest(_:)`` writes.
    public struct RequestLine: Sendable {
        public var method: String
        public var route: String
        public var status: Int
        public var durationMilliseconds: Double
        public var requestID: String
        public init(method: String, route: String, status: Int, durationMilliseconds: Double, requestID: String) {
            self.method = method
            self.route = route
            self.status = status
            self.durationMilliseconds = durationMilliseconds
            self.requestID = requestID
        }

        /// The same line as metadata, for a handler that is not this one.
        public var metadata: Logger.Metadata {
            ["method": .string(method), "route": .string(route), "status": .stringConvertible(status),
             "duration_ms": .stringConvertible(durationMilliseconds), "request_id": .string(requestID)]
        }
    }

    public func log(event: LogEvent) {
        // The handler's metadata, then the event's (which wins over it); the line's own four
        // keys are the handler's, whatever metadata says. No merged dictionary is built: one
        // line per request is on the hot path.
        let extra = event.metadata
        var fields: [(key: String, value: Logger.Metadata.Value)] = []
        fields.reserveCapacity(metadata.count + (extra?.count ?? 0) + 4)
        for (key, value) in metadata where !Self.isOwn(key) && extra?[key] == nil { fields.append((key, value)) }
        if let extra { for (key, value) in extra where !Self.isOwn(key) { fields.append((key, value)) } }
        if !fields.allSatisfy({ Self.plainKeys.contains($0.key) }) {
            Self.secretKeys.withLock { known in
                for i in fields.indices where Self.isSecret(fields[i].key, known: &known) { fields[i].value = .string("[redacted]") }
            }
        }
        fields.append(("ts", .string(PluginSupport.timestamp())))
        fields.append(("level", .string(event.level.rawValue)))
        fields.append(("msg", .string(event.message.description)))
        fields.append(("label", .string(label)))
        // Keys sorted, `/` not escaped; written as bytes (no JSONSerialization, no `Any`).
        fields.sort { $0.key < $1.key }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(UInt8(ascii: "{"))
        for (i, field) in fields.enumerated() {
            if i > 0 { line.append(UInt8(ascii: ",")) }
            JSONValue.writeString(field.key, into: &line)
            line.append(UInt8(ascii: ":"))
            Self.append(field.value, to: &line)
        }
        line.append(UInt8(ascii: "}"))
        write(line)
    }

    private func write(_ line: [UInt8]) {
        if let sink {
            sink(String(decoding: line, as: UTF8.self))
        } else {
            line.withUnsafeBufferPointer { text in Self.outputLock.withLock { _ in Self.writeLine(text, to: STDOUT_FILENO) } }
        }
    }

    /// Keys every request's line carries, known not to name a secret: checked without the lock
    /// and the remembered answers (`JSONLogHandlerTests` checks them against ``secretWords``).
    static let plainKeys = ["method", "route", "status", "duration_ms", "request_id", "hb.request.id"]

    private static func isOwn(_ key: String) -> Bool {
        key == "ts" || key == "level" || key == "msg" || key == "label"
    }

    static func isSecret(_ key: String) -> Bool { secretKeys.withLock { isSecret(key, known: &$0) } }

    /// Whether `key` names a secret. Metadata keys are a small, fixed set: the answers are
    /// remembered (Foundation's substring search per key and word was a visible share of every
    /// request's CPU), and a line's keys take the lock once.
    private static func isSecret(_ key: String, known: inout [String: Bool]) -> Bool {
        if let answer = known[key] { return answer }
        let lowered = key.lowercased()
        let secret = secretWords.contains { lowered.contains($0) }
        if known.count < 1024 { known[key] = secret }
        return secret
    }

    private static let secretKeys = Mutex<[String: Bool]>([:])

    private static func append(_ value: Logger.Metadata.Value, to line: inout [UInt8]) {
        switch value {
        case .string(let s):
            JSONValue.writeString(s, into: &line)
        case .stringConvertible(let s):
            JSONValue.writeString(s.description, into: &line)
        case .array(let a):
            line.append(UInt8(ascii: "["))
            for (i, element) in a.enumerated() {
                if i > 0 { line.append(UInt8(ascii: ",")) }
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let d):
            line.append(UInt8(ascii: "{"))
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { line.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, into: &line)
                line.append(UInt8(ascii: ":"))
                if isSecret(key) { JSONValue.writeString("[redacted]", into: &line) } else { append(d[key]!, to: &line) }
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    private static let outputLock = Mutex(())

    /// Writes a line whole: its own bytes and a newline in one `writev` (no copy, one system
    /// call); a failed write (a closed pipe) drops the line rather than stopping the server.
    static func writeLine(_ text: UnsafeBufferPointer<UInt8>, to fd: Int32) {
        var newline = UInt8(0x0A)
        withUnsafeMutablePointer(to: &newline) { newline in
            var head = UnsafeRawBufferPointer(text)
            var tail = UnsafeRawBufferPointer(start: newline, count: 1)
            var vectors = (iovec(), iovec())
            while !tail.isEmpty {
                vectors.0 = iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count)
                vectors.1 = iovec(iov_base: UnsafeMutableRawPointer(mutating: tail.baseAddress), iov_len: tail.count)
                let written = withUnsafeMutableBytes(of: &vectors) { writev(fd, $0.baseAddress!.assumingMemoryBound(to: iovec.self), 2) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                let fromHead = min(written, head.count)
                head = UnsafeRawBufferPointer(rebasing: head[fromHead...])
                tail = UnsafeRawBufferPointer(rebasing: tail[(written - fromHead)...])
            }
        }
    }
}
