import CLangTuneKernels

/// Where matrix products run. One implementation today (the CPU: oneDNN when
/// the library is present, built-in AVX-512/portable kernels otherwise); the
/// protocol is the seam for bf16, quantized-tile and GPU backends.
public protocol ComputeBackend: Sendable {
    /// Human-readable description for `inspect` and benchmarks.
    var name: String { get }
    var threads: Threads { get }
    /// `y[rows, out] = x[rows, in] · Wᵀ (+ bias)`.
    func linear(_ w: LinearWeight, x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>)
    /// `dx[rows, in] (+)= dy[rows, out] · W`: the input gradient through a frozen weight (training).
    func linearBackwardInput(_ w: LinearWeight, dy: UnsafePointer<Float>, rows: Int, dx: UnsafeMutablePointer<Float>, accumulate: Bool)
    /// `linear` whose every row comes out bit for bit as it would alone (`rows: 1`): serving decodes
    /// requests together and each must get the tokens it would get served by itself.
    func linearRowwise(_ w: LinearWeight, x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>)
    /// Products of more than two rows run in bfloat16 (inputs rounded, float32 accumulation and output).
    var usesBF16: Bool { get }
    /// Decoding at reduced precision (`--dtype bf16`, on any CPU tier): a bfloat16 KV cache and int8-quantized
    /// inputs for the matrix-vector products of quantized weights, as llama.cpp decodes.
    var usesReducedPrecisionDecoding: Bool { get }
}

extension ComputeBackend {
    public var usesBF16: Bool { false }
    public func linearRowwise(_ w: LinearWeight, x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { linear(w, x: x + r * w.inFeatures, rows: 1, y: y + r * w.outFeatures) }
    }
    public var usesReducedPrecisionDecoding: Bool { false }
}

/// The CPU backend.
public struct CPUBackend: ComputeBackend {
    public let threads: Threads
    /// Read GGUF blocks directly in matrix-vector products (generation). Off
    /// means every product uses the float32 copy.
    public let quantizedMatvec: Bool

    /// `--dtype bf16`: matrix products of more than two rows with bfloat16 inputs (LangTune's AMX kernel,
    /// or oneDNN on AVX512-BF16); false (or no bf16 units) keeps float32 everywhere.
    public let bf16: Bool

    public init(threads: Threads = Threads(), quantizedMatvec: Bool = true, bf16: Bool = false) {
        self.threads = threads
        self.quantizedMatvec = quantizedMatvec
        self.bf16 = bf16
    }

    public var usesBF16: Bool { bf16 && BF16GEMM.available }
    public var usesReducedPrecisionDecoding: Bool { bf16 }
    /// Reused scratch of the products (shared by copies of this backend value).
    public let scratch = ScratchCache()

    public var name: String {
        var lib: UnsafePointer<CChar>? = nil
        let gemm = lt_dnnl_available(&lib) != 0 && lt_sgemm_uses_dnnl() != 0
            ? "oneDNN (\(String(cString: lib!)))" : "built-in"
        return "cpu: \(threads.count) threads, GEMM \(gemm), kernels \(CPUTier.active.name)\(CPUTier.active.unitsNote)"
    }

    public func linear(_ w: LinearWeight, x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>) {
        let n = w.outFeatures, k = w.inFeatures
        // Generation reads GGUF blocks directly; everything else without a float32 copy goes through tiles.
        let readsBlocks = quantizedMatvec && w.blocks?.dtype.hasBlockMatvec == true
        if rows > 2, usesBF16, let wb = w.bf16Values {
            scratch.withBF16(rows * k) { xb in
                lt_f32_to_bf16(x, xb, Int64(rows * k))
                BF16GEMM.run(transposedB: true, m: rows, n: n, k: k, a: xb, lda: k, b: wb, ldb: k, beta: 0, c: y, ldc: n,
                             threads: threads)
            }
        } else if w.dense == nil && !(rows <= 2 && readsBlocks) {
            w.tiledForward(x: x, rows: rows, y: y, threads: threads, bf16: usesBF16, scratch: scratch)
        } else if rows <= 2 {
            for r in 0..<rows { matvec(w, x: x + r * k, y: y + r * n) }
        } else if lt_sgemm_uses_dnnl() != 0 {
            lt_sgemm_nt(Int64(rows), Int64(n), Int64(k), x, w.dense!, y, 0)
        } else {
            threads.parallelFor(rows, grain: 4) { s, e in
                lt_sgemm_nt_rows(Int64(s), Int64(e), Int64(n), Int64(k), x, w.dense!, y, 0)
            }
        }
        if let b = w.bias {
            for r in 0..<rows {
                let yr = y + r * n
                for i in 0..<n { yr[i] += b.pointer[i] }
            }
        }
    }

    public func linearBackwardInput(_ w: LinearWeight, dy: UnsafePointer<Float>, rows: Int, dx: UnsafeMutablePointer<Float>,
                                    accumulate: Bool) {
        let n = w.outFeatures, k = w.inFeatures
        let nn = CChar(UInt8(ascii: "N"))
        if rows > 2, usesBF16, let wb = w.bf16Values {
            return scratch.withBF16(rows * n) { db in
                lt_f32_to_bf16(dy, db, Int64(rows * n))
                BF16GEMM.run(transposedB: false, m: rows, n: k, k: n, a: db, lda: n, b: wb, ldb: k, beta: accumulate ? 1 : 0,
                             c: dx, ldc: k, threads: threads)
            }
        }
        if w.dense == nil {
            return w.tiledBackwardInput(dy: dy, rows: rows, dx: dx, accumulate: accumulate, threads: threads, bf16: usesBF16, scratch: scratch)
        }
        lt_sgemm(nn, nn, Int64(rows), Int64(k), Int64(n), 1, dy, Int64(n), w.dense!, Int64(k), accumulate ? 1 : 0, dx, Int64(k))
    }

    /// Each row as `rows: 1` computes it (the same kernel over the same split of outputs), but with the
    /// rows inside each thread's slice of outputs, tile by tile: a tile of 32 weight rows is read from
    /// memory once and from cache for every request row, so B rows cost far less than B matrix-vector
    /// products. Tiles start at the slice's start and hold a multiple of 4 weight rows, so the kernels
    /// group rows in fours exactly as over the whole slice: the numbers do not change.
    public func linearRowwise(_ w: LinearWeight, x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>) {
        let n = w.outFeatures, k = w.inFeatures
        let int8Blocks = quantizedMatvec && w.blocks.map { $0.dtype.hasInt8Matvec } == true
            && lt_int8_matvec_available() != 0
        if rows > 1, usesReducedPrecisionDecoding, int8Blocks, let q = w.blocks {
            rowwiseInt8(q.dtype, q.bytes.baseAddress!, x: x, rows: rows, y: y, n: n, k: k)
        } else if rows < 2 || usesReducedPrecisionDecoding {
            for r in 0..<rows { linear(w, x: x + r * k, rows: 1, y: y + r * n) }
            return
        } else if quantizedMatvec, let q = w.blocks, q.dtype.hasBlockMatvec {
            let base = q.bytes.baseAddress!
            let sums = FloatBuffer(count: rows * (k / 32), zeroed: true)
            let xs = sums.pointer
            if q.dtype.matvecTakesBlockSums { for r in 0..<rows { lt_block_sums(x + r * k, xs + r * (k / 32), Int64(k)) } }
            threads.parallelFor(n, grain: 16) { s, e in
                Self.tiles(s, e) { t0, t1 in
                    for r in 0..<rows {
                        Self.blockMatvec(q.dtype, base, x: x + r * k, sums: xs + r * (k / 32), y: y + r * n, k: k, t0, t1)
                    }
                }
            }
        } else if let d = w.dense {
            threads.parallelFor(n, grain: 16) { s, e in
                Self.tiles(s, e) { t0, t1 in
                    for r in 0..<rows { lt_matvec_f32(d, x + r * k, y + r * n, Int64(k), Int64(t0), Int64(t1)) }
                }
            }
        } else {
            for r in 0..<rows { linear(w, x: x + r * k, rows: 1, y: y + r * n) }
            return
        }
        if let b = w.bias {
            for r in 0..<rows {
                let yr = y + r * n
                for i in 0..<n { yr[i] += b.pointer[i] }
            }
        }
    }

    /// `--dtype bf16` rows as `matvecInt8` computes each alone: every row's input quantized to int8 once,
    /// then tile by tile all rows against the same 32 weight rows (read from memory once per step; each
    /// block unpacked once for all rows). The int8 kernels compute each (weight row, input) pair on its
    /// own, in the same order whatever is batched with it, so neither the split between threads, the
    /// tiling nor the other rows change a bit of any row's result.
    private func rowwiseInt8(_ dtype: DType, _ base: UnsafeRawPointer, x: UnsafePointer<Float>, rows: Int,
                             y: UnsafeMutablePointer<Float>, n: Int, k: Int) {
        let bytes = Int(lt_quantize_q8_bytes(Int64(k))), nb = k / 32
        var q4 = [Int8](repeating: 0, count: rows * bytes), q8 = [UInt8](repeating: 0, count: rows * bytes)
        var d = [Float](repeating: 0, count: rows * nb), sums = d
        q4.withUnsafeMutableBufferPointer { q4p in q8.withUnsafeMutableBufferPointer { q8p in
            d.withUnsafeMutableBufferPointer { dp in sums.withUnsafeMutableBufferPointer { sp in
                let (qa, qb, dd, ss) = (q4p.baseAddress!, q8p.baseAddress!, dp.baseAddress!, sp.baseAddress!)
                threads.parallelFor(rows) { s, e in
                    for r in s..<e {
                        lt_quantize_q8(x + r * k, Int64(k), qa + r * bytes, qb + r * bytes, dd + r * nb, ss + r * nb)
                    }
                }
            } }
        } }
        q4.withUnsafeBufferPointer { q4p in q8.withUnsafeBufferPointer { q8p in d.withUnsafeBufferPointer { dp in
            sums.withUnsafeBufferPointer { sp in
                let (qa, qb, dd, ss) = (q4p.baseAddress!, q8p.baseAddress!, dp.baseAddress!, sp.baseAddress!)
                threads.parallelFor(n, grain: 16) { s, e in
                    Self.tiles(s, e) { t0, t1 in
                        Self.blockMatvecInt8(dtype, base, q4: qa, q8: qb, d: dd, sums: ss, bytes: bytes, y: y, n: n, inputs: rows, k: k, t0, t1)
                    }
                }
            }
        } } }
    }

    /// `s..<e` in tiles of 32 from `s` (the last one shorter).
    private static func tiles(_ s: Int, _ e: Int, _ body: (Int, Int) -> Void) {
        var t = s
        while t < e {
            body(t, min(t + 32, e))
            t += 32
        }
    }

    private func matvec(_ w: LinearWeight, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let n = w.outFeatures, k = Int64(w.inFeatures)
        if quantizedMatvec, let q = w.blocks, q.dtype.hasBlockMatvec {
            let base = q.bytes.baseAddress!
            if usesReducedPrecisionDecoding, q.dtype.hasInt8Matvec, lt_int8_matvec_available() != 0 {
                return matvecInt8(q.dtype, base, x: x, y: y, n: n, k: Int(k))
            }
            var sums = [Float](repeating: 0, count: w.inFeatures / 32)
            if q.dtype.matvecTakesBlockSums { lt_block_sums(x, &sums, k) }
            sums.withUnsafeBufferPointer { sp in
                let xs = sp.baseAddress!
                threads.parallelFor(n, grain: 16) { s, e in Self.blockMatvec(q.dtype, base, x: x, sums: xs, y: y, k: Int(k), s, e) }
            }
            return
        }
        threads.parallelFor(n, grain: 16) { s, e in lt_matvec_f32(w.dense!, x, y, k, Int64(s), Int64(e)) }
    }

    /// Weight rows `r0..<r1` of blocks of `dtype` against one float32 input: the kernel of each block
    /// type in one place. `sums` holds the input's sums per 32 (`DType.matvecTakesBlockSums`).
    private static func blockMatvec(_ dtype: DType, _ w: UnsafeRawPointer, x: UnsafePointer<Float>, sums: UnsafePointer<Float>,
                                    y: UnsafeMutablePointer<Float>, k: Int, _ r0: Int, _ r1: Int) {
        let (k, r0, r1) = (Int64(k), Int64(r0), Int64(r1))
        switch dtype {
        case .q8_0: lt_matvec_q8_0(w, x, y, k, r0, r1)
        case .q5_0: lt_matvec_q5_0(w, x, y, k, r0, r1)
        case .q6_K: lt_matvec_q6_k(w, x, y, k, r0, r1)
        case .q4_1: lt_matvec_q4_1(w, x, sums, y, k, r0, r1)
        case .q4_K: lt_matvec_q4_k(w, x, sums, y, k, r0, r1)
        case .q5_K: lt_matvec_q5_k(w, x, sums, y, k, r0, r1)
        default: lt_matvec_q4_0(w, x, sums, y, k, r0, r1)
        }
    }

    /// Weight rows `r0..<r1` against `inputs` int8-quantized inputs (`lt_quantize_q8`'s layouts, `bytes`
    /// apart; `d`/`sums` per 32, `k / 32` apart), outputs `n` apart: the int8 kernel of each block type
    /// in one place (`DType.hasInt8Matvec`). One input is the single-input call's product bit for bit.
    private static func blockMatvecInt8(_ dtype: DType, _ w: UnsafeRawPointer, q4: UnsafePointer<Int8>, q8: UnsafePointer<UInt8>,
                                        d: UnsafePointer<Float>, sums: UnsafePointer<Float>, bytes: Int, y: UnsafeMutablePointer<Float>,
                                        n: Int, inputs: Int, k: Int, _ r0: Int, _ r1: Int) {
        let (qs, ss, ys, m, k, r0, r1) = (Int64(bytes), Int64(k / 32), Int64(n), Int64(inputs), Int64(k), Int64(r0), Int64(r1))
        switch dtype {
        case .q8_0: _ = lt_matvec_q8_0_int8_inputs(w, q8, qs, d, ss, y, ys, m, k, r0, r1)
        case .q5_0: _ = lt_matvec_q5_0_int8_inputs(w, q8, qs, d, ss, y, ys, m, k, r0, r1)
        default: _ = lt_matvec_q4_int8_inputs(w, dtype == .q4_1 ? 1 : 0, q4, qs, d, sums, ss, y, ys, m, k, r0, r1)
        }
    }

    /// `--dtype bf16`: the input quantized to int8 per block of 32, as llama.cpp does, and the blocks
    /// multiplied in int8 (VNNI on AVX-512, vpmaddubsw on AVX2, widening multiplies on NEON).
    private func matvecInt8(_ dtype: DType, _ base: UnsafeRawPointer, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                            n: Int, k: Int) {
        let bytes = Int(lt_quantize_q8_bytes(Int64(k)))
        var q4 = [Int8](repeating: 0, count: bytes), q8 = [UInt8](repeating: 0, count: bytes)
        var d = [Float](repeating: 0, count: k / 32), sums = d
        lt_quantize_q8(x, Int64(k), &q4, &q8, &d, &sums)
        q4.withUnsafeBufferPointer { q4p in q8.withUnsafeBufferPointer { q8p in d.withUnsafeBufferPointer { dp in
            sums.withUnsafeBufferPointer { sp in
                let (qa, qb, dd, ss) = (q4p.baseAddress!, q8p.baseAddress!, dp.baseAddress!, sp.baseAddress!)
                threads.parallelFor(n, grain: 16) { s, e in
                    Self.blockMatvecInt8(dtype, base, q4: qa, q8: qb, d: dd, sums: ss, bytes: bytes, y: y, n: n, inputs: 1, k: k, s, e)
                }
            }
        } } }
    }
}

extension DType {
    /// Block types the matrix-vector kernels read as stored (`lt_matvec_*`): generation keeps these
    /// quantized. Q5_0 is in the list because a Q4_K_M file stores rows that are not whole K-quant
    /// super-blocks as Q5_0.
    var hasBlockMatvec: Bool {
        switch self {
        case .q4_0, .q4_1, .q8_0, .q5_0, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }

    /// Block types that carry a minimum (or Q4_0's offset of 8): their kernels take x's sums per 32.
    var matvecTakesBlockSums: Bool {
        switch self {
        case .q4_0, .q4_1, .q4_K, .q5_K: return true
        default: return false
        }
    }

    /// Block types with int8-input products (`--dtype bf16` decoding, the input quantized per 32 as
    /// llama.cpp does); the K-quants keep float32 inputs.
    var hasInt8Matvec: Bool {
        switch self {
        case .q4_0, .q4_1, .q8_0, .q5_0: return true
        default: return false
        }
    }
}
