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
    /// The source's blocks when `lt_matvec_*` reads them directly (`DType.hasBlockMatvec`), or the
    /// stored form of a weight kept without a float32 copy (`init(blocksOnly:)`).
    public let blocks: WeightTensor?
    public let bias: FloatBuffer?
    private let owner: AnyObject?
    /// A bfloat16 copy of the weight for `--dtype bf16` products (`prepareBF16`).
    private var bf16Copy: BF16Buffer?
    /// The bf16 values products read: the copy, or a bf16 weight's own stored values (no copy needed).
    var bf16Values: UnsafePointer<UInt16>? {
        if let bf16Copy { return UnsafePointer(bf16Copy.pointer) }
        if let t = blocks, t.dtype == .bf16, let p = t.bytes.baseAddress, Int(bitPattern: p) % 2 == 0 {
            return p.assumingMemoryBound(to: UInt16.self)
        }
        return nil
    }

    /// Makes the bfloat16 copy bf16 products read (once; before the weight is shared across threads):
    /// from the float32 copy, or, with `fromSource`, from the stored blocks of a weight that has no
    /// float32 copy (`--dtype bf16` keeps only the file's blocks and this copy: half the memory of float32).
    /// NF4 weights keep their tiles (QLoRA's memory is the point).
    func prepareBF16(fromSource: Bool = false, threads: Threads = Threads()) {
        guard bf16Values == nil, dense != nil || (fromSource && nf4 == nil && blocks != nil) else { return }
        let k = inFeatures, b = BF16Buffer(count: outFeatures * k)
        if let dense {
            lt_f32_to_bf16(dense, b.pointer, Int64(outFeatures * k))
        } else {
            let rowsPer = max(1, 65_536 / k)
            threads.parallelFor(outFeatures, grain: rowsPer) { s, e in
                let tmp = FloatBuffer(count: rowsPer * k, zeroed: false)
                var r = s
                while r < e {
                    let r1 = min(e, r + rowsPer)
                    dequantizeRows(r, r1, into: tmp.pointer)
                    lt_f32_to_bf16(tmp.pointer, b.pointer + r * k, Int64((r1 - r) * k))
                    r = r1
                }
            }
        }
        bf16Copy = b
    }

    /// Whether `prepareBF16` made a copy (memory accounting).
    var hasBF16Copy: Bool { bf16Copy != nil }

    /// Whether products of many rows read a whole-matrix copy (float32 or bf16) rather than tiles.
    var hasWholeCopy: Bool { dense != nil || bf16Values != nil }

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
        blocks = t.dtype.hasBlockMatvec ? t : nil
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

    /// A frozen weight kept in its stored form: a GGUF's own quantized blocks (any block type
    /// LangTune dequantizes) or 16-bit floats (bf16/f16, e.g. a QLoRA base's embeddings and head);
    /// products dequantize tiles of rows, no float32 copy is made.
    public init(blocksOnly t: WeightTensor) throws {
        let stored = t.dtype.isQuantized || t.dtype == .bf16 || t.dtype == .f16
        guard t.shape.count == 2, stored, t.cols % t.dtype.blockSize == 0 else {
            throw FormatError(file: t.name, "keeping \(t.dtype) values needs a 2-D quantized or 16-bit weight in whole blocks")
        }
        guard t.dtype.byteCount(elements: t.elementCount) == t.byteCount, t.offset >= 0, t.offset + t.byteCount <= t.storage.count else {
            throw FormatError(file: t.name, "\(t.byteCount) bytes do not hold \(t.shape) \(t.dtype) values inside its file")
        }
        outFeatures = t.shape[0]
        inFeatures = t.shape[1]
        dense = nil
        nf4 = nil
        blocks = t
        owner = t.storage
        bias = nil
    }

    /// The weight as float32 `[out, in]`, whatever its storage (merge, export, tests).
    public func floatValues() -> [Float] {
        if let dense { return Array(UnsafeBufferPointer(start: dense, count: outFeatures * inFeatures)) }
        if let nf4 { return nf4.dequantize() }
        var out = [Float](repeating: 0, count: outFeatures * inFeatures)
        out.withUnsafeMutableBufferPointer { dequantizeRows(0, outFeatures, into: $0.baseAddress!) }
        return out
    }

    /// Row `r` (an embedding lookup) as float32 into `out`.
    func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if let dense { out.update(from: dense + r * inFeatures, count: inFeatures) } else { dequantizeRows(r, r + 1, into: out) }
    }

    /// Rows [r0, r1) as float32 into `out` (tiles of a weight without a float32 copy).
    func dequantizeRows(_ r0: Int, _ r1: Int, into out: UnsafeMutablePointer<Float>) {
        let k = inFeatures
        if let nf4 { return nf4.dequantize(r0 * k, r1 * k, into: out) }
        if let dense { out.update(from: dense + r0 * k, count: (r1 - r0) * k); return }
        let t = blocks!
        let rowBytes = k / t.dtype.blockSize * t.dtype.bytesPerBlock
        let base = t.bytes.baseAddress!
        for r in r0..<r1 { dequantizeRow(t.dtype, base + r * rowBytes, out + (r - r0) * k, count: k) }
    }
}
