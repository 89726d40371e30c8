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
    private let sink: @Sendable (String) -> Void

    /// Words that make a metadata key secret.
    static let secretWords = ["token", "secret", "password", "authorization", "cookie", "ciphertext", "master_key", "api_key", "private_key", "credential"]

    public init(label: String, level: Logger.Level = .info, sink: @escaping @Sendable (String) -> Void = JSONLogHandler.standardOutput) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, Logger.Metadata.Value)] = []
        fields.reserveCapacity(metadata.count + (event.metadata?.count ?? 0) + 4)
        // The handler's own metadata is usually empty: the event's is then taken as it is.
        var merged: Logger.Metadata
        switch (metadata.isEmpty, event.metadata) {
        case (_, nil): merged = metadata
        case (true, let extra?): merged = extra
        case (false, let extra?): merged = metadata.merging(extra) { _, new in new }
        }
        merged["ts"] = nil
        merged["level"] = nil
        merged["msg"] = nil
        merged["label"] = nil
        let secret = Self.isSecret(Array(merged.keys))
        for ((key, value), secret) in zip(merged, secret) {
            fields.append((key, secret ? .string("[redacted]") : value))
        }
        fields.append(("ts", .string(PluginSupport.timestamp())))
        fields.append(("level", .string(event.level.rawValue)))
        fields.append(("msg", .string(event.message.description)))
        fields.append(("label", .string(label)))
        // Written by hand (no JSONSerialization, no `Any`): one line per request is on the hot
        // path. Keys sorted, `/` not escaped, as before.
        fields.sort { $0.0 < $1.0 }
        var line = ""
        line.reserveCapacity(256)
        line.append("{")
        for (i, (key, value)) in fields.enumerated() {
            if i > 0 { line.append(",") }
            Self.appendString(key, to: &line)
            line.append(":")
            Self.append(value, to: &line)
        }
        line.append("}")
        sink(line)
    }

    static func isSecret(_ key: String) -> Bool { isSecret([key])[0] }

    /// Whether each key names a secret, in order. Metadata keys are a small, fixed set: the
    /// answers are remembered (Foundation's substring search per key and word was a visible share
    /// of every request's CPU), and a line's keys take the lock once.
    static func isSecret(_ keys: [String]) -> [Bool] {
        secretKeys.withLock { known in
            keys.map { key in
                if let answer = known[key] { return answer }
                let lowered = key.lowercased()
                let secret = secretWords.contains { lowered.contains($0) }
                if known.count < 1024 { known[key] = secret }
                return secret
            }
        }
    }

    private static let secretKeys = Mutex<[String: Bool]>([:])

    private static func append(_ value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let s):
            appendString(s, to: &line)
        case .stringConvertible(let s):
            appendString(s.description, to: &line)
        case .array(let a):
            line.append("[")
            for (i, element) in a.enumerated() {
                if i > 0 { line.append(",") }
                append(element, to: &line)
            }
            line.append("]")
        case .dictionary(let d):
            line.append("{")
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { line.append(",") }
                appendString(key, to: &line)
                line.append(":")
                if isSecret(key) { appendString("[redacted]", to: &line) } else { append(d[key]!, to: &line) }
            }
            line.append("}")
        }
    }

    private static let hexDigits = Array("0123456789abcdef")

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func appendString(_ s: String, to line: inout String) {
        line.append("\"")
        var needsEscape = false
        for b in s.utf8 where b < 0x20 || b == 0x22 || b == 0x5C { needsEscape = true; break }
        if !needsEscape {
            line.append(s)
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": line.append("\\\"")
                case "\\": line.append("\\\\")
                case "\n": line.append("\\n")
                case "\r": line.append("\\r")
                case "\t": line.append("\\t")
                case "\u{08}": line.append("\\b")
                case "\u{0C}": line.append("\\f")
                default:
                    if scalar.value < 0x20 {
                        line.append("\\u00")
                        line.append(hexDigits[Int(scalar.value >> 4)])
                        line.append(hexDigits[Int(scalar.value & 0xF)])
                    } else {
                        line.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        line.append("\"")
    }

    private static let outputLock = Mutex(())

    /// Writes a line to standard output, whole: the line's own bytes and a newline in one
    /// `writev` (no copy into a `Data`, one system call); a failed write (a closed pipe) drops
    /// the line rather than stopping the server.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        var line = line
        line.withUTF8 { text in
            outputLock.withLock { _ in writeLine(text, to: STDOUT_FILENO) }
        }
    }

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
