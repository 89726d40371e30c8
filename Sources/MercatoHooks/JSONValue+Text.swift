/// JSON text of a value written directly, without `JSONEncoder`'s generic containers: the
/// same bytes `JSONEncoder` writes with `.sortedKeys` and `.withoutEscapingSlashes` (keys in
/// the order of their UTF-8 bytes, whole numbers below 9×10¹⁵ as integers, other numbers as Swift prints
/// them, `"`, `\`, and control characters escaped, everything else as it is), at a fraction of
/// the cost: answers, stored values and event payloads are written on the hot paths.
extension JSONValue {
    /// Thrown for a number JSON cannot hold (infinite or not a number), as `JSONEncoder` refuses it.
    public struct NotRepresentable: Error, Equatable {
        public let value: Double
    }

    /// The value as UTF-8 JSON text.
    public func jsonBytes() throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        try write(into: &out)
        return out
    }

    /// The value as JSON text.
    public func jsonText() throws -> String {
        String(decoding: try jsonBytes(), as: UTF8.self)
    }

    /// Appends the value's JSON text to `out`.
    public func write(into out: inout [UInt8]) throws {
        switch self {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n):
            guard n.isFinite else { throw NotRepresentable(value: n) }
            if n.rounded() == n, abs(n) < 9.0e15 {
                out.append(contentsOf: String(Int64(n)).utf8)
            } else {
                // As JSONEncoder writes a Double: Swift's shortest form, a whole number without `.0`.
                let text = n.description
                out.append(contentsOf: text.hasSuffix(".0") ? text.utf8.dropLast(2) : text.utf8[...])
            }
        case .string(let s):
            Self.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, element) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                try element.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            try Self.writeObject(o, verbatim: [:], into: &out)
        }
    }

    /// Appends the value's JSON text, the members of an object named in `verbatim` written as
    /// that text (as received) instead of their value.
    public func write(into out: inout [UInt8], verbatim: [String: JSONText]) throws {
        guard !verbatim.isEmpty, case .object(let o) = self else { return try write(into: &out) }
        try Self.writeObject(o, verbatim: verbatim, into: &out)
    }

    private static func writeObject(_ o: [String: JSONValue], verbatim: [String: JSONText], into out: inout [UInt8]) throws {
        out.append(UInt8(ascii: "{"))
        // The pairs sorted, not the keys: no second hash lookup per member.
        for (i, member) in o.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            writeString(member.key, into: &out)
            out.append(UInt8(ascii: ":"))
            if let text = verbatim[member.key] { out.append(contentsOf: text.bytes) } else { try member.value.write(into: &out) }
        }
        out.append(UInt8(ascii: "}"))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string literal of `s`. Runs of bytes that need no escape are copied whole (most
    /// strings are one such run); only `"`, `\\` and control characters are written escaped.
    /// The text is scanned eight bytes at a time (a value of a KiB is common: `kv.set`).
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            out.append(UInt8(ascii: "\""))
            guard let base = bytes.baseAddress else {
                out.append(UInt8(ascii: "\""))
                return
            }
            let count = bytes.count
            var start = 0, index = 0
            while index < count {
                if index + 8 <= count, !needsEscape(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)) {
                    index += 8
                    continue
                }
                let byte = base[index]
                if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    if start < index { out.append(contentsOf: UnsafeBufferPointer(start: base + start, count: index - start)) }
                    appendEscaped(byte, to: &out)
                    start = index + 1
                }
                index += 1
            }
            if start < count { out.append(contentsOf: UnsafeBufferPointer(start: base + start, count: count - start)) }
            out.append(UInt8(ascii: "\""))
        }
    }

    /// Whether any of the eight bytes of `word` is below 0x20, `"` or `\\` (bytes of 0x80 and
    /// above never count; a word said to need one is then looked at byte by byte).
    @inline(__always)
    static func needsEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
        let below = (word &- ones &* 0x20) & ~word & highs != 0
        return below || hasZero(word ^ (ones &* 0x22)) || hasZero(word ^ (ones &* 0x5C))
    }

    private static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
        case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
        default:
            out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }
}
