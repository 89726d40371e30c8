#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Random bits for ids, from the kernel's cryptographically secure generator (`/dev/urandom`)
/// read 4 KiB at a time: the ids made on every request (records, events, plugin keys) would
/// otherwise cost a system call each (`getrandom`, behind `SystemRandomNumberGenerator` and
/// libsodium's `randombytes_buf`). Key material and nonces keep ``bytes(_:)``.
extension SecureRandom {
    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var used = 4096
        var device: Int32 = -1

        mutating func take(_ count: Int) -> UInt128 {
            if used + count > bytes.count {
                refill()
                used = 0
            }
            var bits: UInt128 = 0
            for i in used ..< used + count { bits = bits << 8 | UInt128(bytes[i]) }
            used += count
            return bits
        }

        private mutating func refill() {
            #if canImport(Glibc)
            if device < 0 { device = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }
            if device >= 0, bytes.withUnsafeMutableBytes({ read(device, $0.baseAddress, $0.count) }) == bytes.count { return }
            #endif
            var generator = SystemRandomNumberGenerator()
            for i in stride(from: 0, to: bytes.count, by: 8) {
                withUnsafeBytes(of: generator.next() as UInt64) { word in
                    for (offset, byte) in word.enumerated() { bytes[i + offset] = byte }
                }
            }
        }
    }

    private static let pool = Mutex(Pool())

    /// `count` random bytes (at most 16) as the low bits of the answer.
    public static func bits(_ count: Int) -> UInt128 {
        precondition((0 ... 16).contains(count), "at most 16 bytes at a time")
        return pool.withLock { $0.take(count) }
    }

    /// 64 random bits.
    public static func uint64() -> UInt64 { UInt64(truncatingIfNeeded: bits(8)) }
}
