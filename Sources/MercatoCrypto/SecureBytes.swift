import CSodium
public import Foundation

/// Key material kept in libsodium's guarded heap (`sodium_malloc`: guard pages, `mlock`ed,
/// zeroed on free) instead of an ordinary Swift array that may be copied and never wiped.
public final class SecureBytes: @unchecked Sendable {
    // Immutable after init; libsodium owns the memory. @unchecked because the pointer is
    // only read after construction.
    private let pointer: UnsafeMutableRawPointer
    /// Number of bytes held.
    public let count: Int

    /// Copies `bytes` into guarded memory.
    public init(_ bytes: some ContiguousBytes) {
        Sodium.ready()
        let count = bytes.withUnsafeBytes { $0.count }
        guard let pointer = sodium_malloc(max(count, 1)) else {
            fatalError("sodium_malloc failed: out of locked memory")
        }
        bytes.withUnsafeBytes { source in
            if count > 0 { pointer.copyMemory(from: source.baseAddress!, byteCount: count) }
        }
        self.pointer = pointer
        self.count = count
    }

    /// `count` fresh random bytes.
    public static func random(count: Int) -> SecureBytes {
        Sodium.ready()
        let bytes = SecureBytes(zeroed: count)
        randombytes_buf(bytes.pointer, count)
        return bytes
    }

    private init(zeroed count: Int) {
        guard let pointer = sodium_malloc(max(count, 1)) else {
            fatalError("sodium_malloc failed: out of locked memory")
        }
        sodium_memzero(pointer, count)
        self.pointer = pointer
        self.count = count
    }

    /// Fills a new buffer of `count` bytes with `body`.
    static func filled(count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) -> SecureBytes {
        let bytes = SecureBytes(zeroed: count)
        body(UnsafeMutableRawBufferPointer(start: bytes.pointer, count: count))
        return bytes
    }

    deinit { sodium_free(pointer) }

    /// Read access to the bytes; do not let the pointer escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// A copy in an ordinary array, for writing a key out (key files, the first print of a key).
    public func exportBytes() -> [UInt8] {
        withUnsafeBytes { Array($0) }
    }
}
