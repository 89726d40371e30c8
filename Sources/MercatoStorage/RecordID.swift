import Synchronization
/// Opaque, time-ordered ids with a type prefix (`org_01JD...`): 48 bits of milliseconds and
/// 80 random bits in Crockford base32, so ids sort by creation time and serve as list cursors.
public enum RecordID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")

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
        var chars = [Character](repeating: "0", count: 26)
        for i in stride(from: 25, through: 0, by: -1) {
            chars[i] = alphabet[Int(value & 31)]
            value >>= 5
        }
        return prefix + "_" + String(chars)
    }

    /// `true` when `text` has the shape of an id with `prefix`.
    public static func isValid(_ text: String, prefix: String) -> Bool {
        guard text.hasPrefix(prefix + "_") else { return false }
        let body = text.dropFirst(prefix.count + 1)
        return body.count == 26 && body.allSatisfy { alphabet.contains($0) }
    }
}
