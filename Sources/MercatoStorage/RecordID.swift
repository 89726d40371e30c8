import Synchronization
/// Opaque, time-ordered ids with a type prefix (`org_01JD...`): 48 bits of milliseconds and
/// 80 random bits in Crockford base32, so ids sort by creation time and serve as list cursors.
public enum RecordID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
    /// Per ASCII byte: whether it is one of ``alphabet``'s.
    private static let inAlphabet: [Bool] = (0 ..< 128).map { byte in alphabet.contains(UInt8(byte)) }

    /// A new id such as `ins_01jd3m...`.
    private static let lastMade = Mutex<UInt128>(0)

    public static func make(_ prefix: String, millis: Int64 = Timestamp.nowMillis()) -> String {
        var generator = SystemRandomNumberGenerator()   // getrandom(2): cryptographically secure
        var value = (UInt128(UInt64(millis) & 0xFFFF_FFFF_FFFF) << 80)
            | (UInt128(generator.next() as UInt64) << 16)
            | UInt128(generator.next() as UInt16)
        // Ids made in the same millisecond by this process keep their order of creation.
        value = lastMade.withLock { last in
            if value >> 80 == last >> 80, value <= last { value = last + 1 }
            last = value
            return value
        }
        // The prefix, `_` and 26 base32 digits written as bytes into the string's own storage.
        let prefixBytes = prefix.utf8
        return String(unsafeUninitializedCapacity: prefixBytes.count + 27) { out in
            var at = 0
            for byte in prefixBytes { out[at] = byte; at += 1 }
            out[at] = UInt8(ascii: "_")
            for i in stride(from: at + 26, through: at + 1, by: -1) {
                out[i] = alphabet[Int(value & 31)]
                value >>= 5
            }
            return at + 27
        }
    }

    /// `true` when `text` has the shape of an id with `prefix`.
    public static func isValid(_ text: String, prefix: String) -> Bool {
        let bytes = text.utf8, head = prefix.utf8
        guard bytes.count == head.count + 27, bytes.starts(with: head),
              bytes[bytes.index(bytes.startIndex, offsetBy: head.count)] == UInt8(ascii: "_") else { return false }
        return bytes.dropFirst(head.count + 1).allSatisfy { $0 < 128 && inAlphabet[Int($0)] }
    }
}
