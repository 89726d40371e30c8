/// JSON text as it was received, read once: ``value`` is what it reads as, and where it is
/// embedded (``EventDraft/verbatim``) these bytes are written as they are. A provider's body so
/// reaches the app with its own member order, spacing and numbers (read into a `Double`, an
/// integer past 2^53 would come out rounded).
public struct JSONText: Sendable, Equatable {
    /// The text: UTF-8, one JSON value, without a byte order mark or whitespace around it.
    public let bytes: [UInt8]
    /// What the text reads as.
    public let value: JSONValue

    /// `bytes` read as JSON (``JSONValue/init(parsing:)-(Collection<UInt8>)``); throws
    /// when they are not one JSON value.
    public init(reading bytes: [UInt8]) throws(JSONValue.ParseError) {
        value = try JSONValue(parsing: bytes)
        // It read, so the text is one value between an optional byte order mark and whitespace.
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var end = bytes.count
        while start < end, Self.isBlank(bytes[start]) { start += 1 }
        while end > start, Self.isBlank(bytes[end - 1]) { end -= 1 }
        self.bytes = start == 0 && end == bytes.count ? bytes : Array(bytes[start ..< end])
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
