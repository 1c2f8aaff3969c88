import CLangTuneKernels
import Foundation
/// A heap array of Float aligned to 64 bytes, for activations and weights the
/// kernels read with SIMD loads. Freed when the buffer is released.
public final class FloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: max(count, 1)) }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { src in
            if let b = src.baseAddress { pointer.update(from: b, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}

/// Fixes glibc's mmap threshold at `bytes`, so buffers at least that large are mapped and unmapped
/// on their own and freed ones do not stay resident (see `pinMallocThreshold` in the CLI); a no-op
/// off glibc.
public func pinMmapThreshold(bytes: Int) { _ = lt_pin_mmap_threshold(Int64(bytes)) }

/// Returns the heap's free pages to the system (glibc; a no-op elsewhere).
public func releaseFreeMemory() { lt_release_free_memory() }

/// A heap array of bfloat16 bit patterns aligned to 64 bytes (bf16 GEMM operands).
final class BF16Buffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt16>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 2, alignment: 64)
            .bindMemory(to: UInt16.self, capacity: max(count, 1))
    }
    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Scratch space matrix products reuse from call to call (bf16 copies of their inputs, dequantized
/// weight tiles): a fresh buffer over 128 KB is a new mapping the kernel zeroes page by page. One
/// buffer per size class is kept (`Workspace.sizeClass`); a buffer in use is not shared.
public final class ScratchCache: @unchecked Sendable {
    private let lock = NSLock()
    private var floats: [Int: FloatBuffer] = [:]
    private var halves: [Int: BF16Buffer] = [:]

    public init() {}

    func withFloats<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let size = Workspace.sizeClass(count)
        let b = lock.withLock { floats.removeValue(forKey: size) } ?? FloatBuffer(count: size, zeroed: false)
        defer { lock.withLock { floats[size] = b } }
        return body(b.pointer)
    }

    func withBF16<R>(_ count: Int, _ body: (UnsafeMutablePointer<UInt16>) -> R) -> R {
        let size = Workspace.sizeClass(count)
        let b = lock.withLock { halves.removeValue(forKey: size) } ?? BF16Buffer(count: size)
        defer { lock.withLock { halves[size] = b } }
        return body(b.pointer)
    }
}
