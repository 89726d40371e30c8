import Foundation
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
        var object: [String: Any] = [
            "ts": Self.timestamp(),
            "level": event.level.rawValue,
            "msg": event.message.description,
            "label": label,
        ]
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged {
            object[key] = Self.isSecret(key) ? "[redacted]" : Self.plain(value)
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
              let line = String(data: data, encoding: .utf8) else { return }
        sink(line)
    }

    static func isSecret(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return secretWords.contains { lowered.contains($0) }
    }

    private static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): s
        case .stringConvertible(let s): s.description
        case .array(let a): a.map(plain)
        case .dictionary(let d): d.reduce(into: [String: Any]()) { $0[$1.key] = isSecret($1.key) ? "[redacted]" : plain($1.value) }
        }
    }

    private static func timestamp() -> String {
        Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    private static let outputLock = Mutex(())

    /// Writes a line to standard output, whole.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        outputLock.withLock { _ in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}
