import CLangTuneKernels
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
