import CLangTuneKernels

/// bf16 matrix products with float32 accumulation and output: LangTune's AMX kernel where the CPU
/// and kernel allow it (columns split across `threads`), else oneDNN's `dnnl_gemm_bf16bf16f32`
/// (which threads itself). `bench gemm` measures both.
enum BF16GEMM {
    /// Whether any bf16 product runs here.
    static var available: Bool { lt_bf16_products_available() != 0 }

    /// Which implementation `run` picks.
    static var implementation: String {
        if lt_amx_available() != 0 { return "LangTune AMX kernel" }
        return lt_bf16_gemm_available() != 0 ? "oneDNN" : "none"
    }

    /// `C[M,N] = A[M,K] · op(B) + beta·C`, row-major; op(B) is `B[K][N]` (`transposedB` false) or
    /// `B[N][K]ᵀ`. `beta` 0 or 1. Returns false when no bf16 product is available (C untouched).
    @discardableResult
    static func run(transposedB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<UInt16>, lda: Int,
                    b: UnsafePointer<UInt16>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                    threads: Threads) -> Bool {
        let tb = CChar(UInt8(ascii: transposedB ? "T" : "N")), nn = CChar(UInt8(ascii: "N"))
        if lt_amx_available() != 0 {
            // Whole 32-column panels per thread; the kernel packs its own columns of B.
            let panels = (n + 31) / 32
            threads.parallelFor(panels) { s, e in
                let n0 = s * 32, n1 = min(n, e * 32)
                if lt_gemm_bf16_amx(tb, Int64(m), Int64(n), Int64(k), 1, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc),
                                    Int64(n0), Int64(n1)) == 0 { return }
                // The kernel's scratch could not be had: these columns through oneDNN.
                let bs = transposedB ? b + n0 * ldb : b + n0
                let rc = lt_gemm_bf16(nn, tb, Int64(m), Int64(n1 - n0), Int64(k), 1, a, Int64(lda), bs, Int64(ldb), beta,
                                      c + n0, Int64(ldc))
                precondition(rc == 0, "bf16 GEMM: no memory for the AMX kernel's scratch and no oneDNN")
            }
            return true
        }
        return lt_gemm_bf16(nn, tb, Int64(m), Int64(n), Int64(k), 1, a, Int64(lda), b, Int64(ldb),
                            beta, c, Int64(ldc)) == 0
    }
}
