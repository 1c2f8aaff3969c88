import CLangTuneKernels

/// A frozen linear layer's weight `[out, in]` in the forms the kernels read:
/// always a float32 matrix (for batched GEMM and exact float32 parity), plus the
/// file's own quantized blocks when the matrix-vector kernels can read them,
/// which is what makes token-by-token generation fast.
public final class LinearWeight: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    /// Row-major float32 `[out, in]`; nil when the weight is kept as NF4 (QLoRA).
    public let dense: UnsafePointer<Float>?
    /// The NF4 form of a QLoRA base weight: products dequantize it tile by tile.
    public let nf4: NF4Tensor?
    /// Q4_0 / Q4_1 / Q8_0 blocks read directly by `lt_matvec_*`, if the source had them.
    public let blocks: WeightTensor?
    public let bias: FloatBuffer?
    private let owner: AnyObject?

    /// Builds from a stored tensor, dequantizing to float32 (or pointing at the
    /// mapped file when it already is float32).
    public init(_ t: WeightTensor, bias: WeightTensor? = nil) throws {
        guard t.shape.count == 2 else {
            throw FormatError(file: t.name, "expected a 2-D weight, got shape \(t.shape)")
        }
        outFeatures = t.shape[0]
        inFeatures = t.shape[1]
        if t.dtype == .f32 {
            dense = t.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            owner = t.storage
        } else {
            let buf = FloatBuffer(try dequantize(t))
            dense = UnsafePointer(buf.pointer)
            owner = buf
        }
        switch t.dtype {
        case .q4_0, .q4_1, .q8_0: blocks = t
        default: blocks = nil
        }
        nf4 = nil
        if let b = bias {
            guard b.elementCount == outFeatures else {
                throw FormatError(file: b.name, "bias has \(b.elementCount) values, expected \(outFeatures)")
            }
            self.bias = FloatBuffer(try dequantize(b))
        } else {
            self.bias = nil
        }
    }

    /// Builds from float32 values `[out, in]` (tests, random models).
    public init(out: Int, in inF: Int, values: [Float], bias: [Float]? = nil) {
        precondition(values.count == out * inF)
        outFeatures = out
        inFeatures = inF
        let buf = FloatBuffer(values)
        dense = UnsafePointer(buf.pointer)
        owner = buf
        blocks = nil
        nf4 = nil
        self.bias = bias.map(FloatBuffer.init)
    }

    /// A frozen weight kept as NF4 (QLoRA's base); no float32 copy is made.
    public init(nf4 q: NF4Tensor, bias: [Float]? = nil) {
        precondition(q.shape.count == 2)
        outFeatures = q.shape[0]
        inFeatures = q.shape[1]
        dense = nil
        nf4 = q
        blocks = nil
        owner = nil  // the NF4 arrays live in `nf4`
        self.bias = bias.map(FloatBuffer.init)
    }

    /// The weight as float32 `[out, in]`, whatever its storage (merge, export, tests).
    public func floatValues() -> [Float] {
        if let dense { return Array(UnsafeBufferPointer(start: dense, count: outFeatures * inFeatures)) }
        return nf4!.dequantize()
    }
}
