import MercatoCrypto
import Synchronization

/// Opaque, time-ordered ids with a type prefix (`org_01JD...`): 48 bits of milliseconds and
/// 80 random bits in Crockford base32, so ids sort by creation time and serve as list cursors.
public enum RecordID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
    /// Per ASCII byte: whether it is one of ``alphabet``'s.
    private static let inAlphabet: [Bool] = (0 ..< 128).map { byte in alphabet.contains(UInt8(byte)) }

    /// The last id made in each of the last few milliseconds ids were made in.
    private struct State {
        /// (millisecond, last id made in it), at most 8, the oldest replaced first: ids of one
        /// millisecond keep their order even when ids of other times are made between them.
        var recent: [(millis: UInt128, last: UInt128)] = []
        var replace = 0

        /// `value` (a time and random bits), or the next after the last id of its millisecond
        /// when that one is not below it.
        mutating func ordered(_ value: UInt128) -> UInt128 {
            let millis = value >> 80
            if let at = recent.firstIndex(where: { $0.millis == millis }) {
                let next = value > recent[at].last ? value : recent[at].last + 1
                recent[at].last = next
                return next
            }
            if recent.count < 8 {
                recent.append((millis, value))
            } else {
                recent[replace] = (millis, value)
                replace = (replace + 1) % 8
            }
            return value
        }
    }

    private static let state = Mutex(State())

    /// A new id such as `ins_01jd3m...`.
    public static func make(_ prefix: String, millis: Int64 = Timestamp.nowMillis()) -> String {
        let time = UInt128(UInt64(millis) & 0xFFFF_FFFF_FFFF) << 80
        // Ids made in the same millisecond by this process keep their order of creation.
        let random = SecureRandom.bits(10)
        var value = state.withLock { state in state.ordered(time | random) }
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
