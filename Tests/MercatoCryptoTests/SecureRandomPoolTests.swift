import MercatoCrypto
import Testing

/// The pooled bits for ids: each draw is new, also across the pool's 4 KiB refills, and a
/// draw of n bytes sets no bit above them.
@Suite("Pooled randomness for ids")
struct SecureRandomPoolTests {
    @Test func drawsDifferAcrossRefills() {
        // 10-byte draws, as ids take them: 2,000 of them read the 4 KiB pool about five times.
        let draws = (0 ..< 2_000).map { _ in SecureRandom.bits(10) }
        #expect(Set(draws).count == draws.count)
        #expect(draws.allSatisfy { $0 >> 80 == 0 })
        // Every bit position of the 80 takes both values somewhere.
        let ones = draws.reduce(UInt128(0)) { $0 | $1 }
        let zeros = draws.reduce(UInt128(0)) { $0 | ~$1 } & ((UInt128(1) << 80) - 1)
        #expect(ones == (UInt128(1) << 80) - 1)
        #expect(zeros == (UInt128(1) << 80) - 1)
        #expect(Set((0 ..< 1_000).map { _ in SecureRandom.uint64() }).count == 1_000)
    }
}
