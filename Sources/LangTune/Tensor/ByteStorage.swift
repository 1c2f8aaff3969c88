#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only span of bytes that stays valid while this object lives:
/// a memory-mapped file, or a heap buffer we own.
///
/// Weight tensors point into one of these instead of copying, so loading a
/// model costs page faults, not a second copy of every weight.
public final class ByteStorage: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    private let release: @Sendable (UnsafeRawPointer, Int) -> Void

    /// Wraps memory whose ownership passes to this object; `release` frees it.
    public init(base: UnsafeRawPointer, count: Int, release: @escaping @Sendable (UnsafeRawPointer, Int) -> Void) {
        self.base = base
        self.count = count
        self.release = release
    }

    /// Copies `bytes` into a new heap buffer.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        if let src = bytes.baseAddress, bytes.count > 0 { p.copyMemory(from: src, byteCount: bytes.count) }
        self.init(base: UnsafeRawPointer(p), count: bytes.count) { p, _ in UnsafeMutableRawPointer(mutating: p).deallocate() }
    }

    /// Copies an array of trivially copyable values into a new heap buffer.
    public convenience init<T: BitwiseCopyable>(copying array: [T]) {
        let count = array.count * MemoryLayout<T>.stride
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        // Copy inside the closure: the array's buffer is only valid there.
        array.withUnsafeBytes { src in
            if let b = src.baseAddress, count > 0 { p.copyMemory(from: b, byteCount: count) }
        }
        self.init(base: UnsafeRawPointer(p), count: count) { p, _ in UnsafeMutableRawPointer(mutating: p).deallocate() }
    }

    deinit { release(base, count) }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
