#if canImport(Glibc)
import Glibc
#endif
import Synchronization
/// Opaque, time-ordered ids with a type prefix (`org_01JD...`): 48 bits of milliseconds and
/// 80 random bits in Crockford base32, so ids sort by creation time and serve as list cursors.
public enum RecordID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
    /// Per ASCII byte: whether it is one of ``alphabet``'s.
    private static let inAlphabet: [Bool] = (0 ..< 128).map { byte in alphabet.contains(UInt8(byte)) }

    /// The last id made in each of the last few milliseconds ids were made in, and random bits
    /// for the next ones.
    private struct State {
        /// (millisecond, last id made in it), at most 8, the oldest replaced first: ids of one
        /// millisecond keep their order even when ids of other times are made between them.
        var recent: [(millis: UInt128, last: UInt128)] = []
        var replace = 0
        /// Random bytes from the kernel's generator (`/dev/urandom`, cryptographically secure),
        /// read 4 KiB at a time rather than with two system calls per id.
        var pool = [UInt8](repeating: 0, count: 4096)
        var used = 4096
        var device: Int32 = -1

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

        mutating func random80() -> UInt128 {
            if used + 10 > pool.count {
                refill()
                used = 0
            }
            var bits: UInt128 = 0
            for i in used ..< used + 10 { bits = bits << 8 | UInt128(pool[i]) }
            used += 10
            return bits
        }

        private mutating func refill() {
            #if canImport(Glibc)
            if device < 0 { device = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }
            if device >= 0, pool.withUnsafeMutableBytes({ read(device, $0.baseAddress, $0.count) }) == pool.count { return }
            #endif
            var generator = SystemRandomNumberGenerator()
            for i in stride(from: 0, to: pool.count, by: 8) {
                withUnsafeBytes(of: generator.next() as UInt64) { bytes in
                    for (offset, byte) in bytes.enumerated() { pool[i + offset] = byte }
                }
            }
        }
    }

    private static let state = Mutex(State())

    /// A new id such as `ins_01jd3m...`.
    public static func make(_ prefix: String, millis: Int64 = Timestamp.nowMillis()) -> String {
        let time = UInt128(UInt64(millis) & 0xFFFF_FFFF_FFFF) << 80
        // Ids made in the same millisecond by this process keep their order of creation.
        var value = state.withLock { state in state.ordered(time | state.random80()) }
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
