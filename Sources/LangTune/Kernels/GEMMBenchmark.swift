import CLangTuneKernels
import Foundation

/// GEMM throughput of the float32 and bfloat16 paths on one shape, for `bench gemm` and for the
/// model-FLOP-utilization figures of the training benchmark (the bf16 peak measured in the same run).
public struct GEMMMeasurement: Sendable, Codable {
    public var m: Int, n: Int, k: Int
    /// GFLOP/s (2·m·n·k per product), best of the repetitions.
    public var f32GFLOPS: Double
    /// The bf16 path training uses (`BF16GEMM`: LangTune's AMX kernel, else oneDNN); nil when no bf16
    /// product runs here.
    public var bf16GFLOPS: Double?
    /// Which implementation `bf16GFLOPS` measured.
    public var bf16Implementation: String?
    /// oneDNN's `dnnl_gemm_bf16bf16f32` on the same inputs when it is not the path measured above (the
    /// baseline for the AMX kernel); nil otherwise.
    public var oneDNNBF16GFLOPS: Double?
    /// max |bf16 − f32| / max |f32| over the output: the rounding of the inputs to bf16.
    public var bf16RelativeError: Double?

    /// C[m, n] = A[m, k] · B[n, k]ᵀ on seeded random inputs, `repeats` times per path.
    public static func measure(m: Int, n: Int, k: Int, repeats: Int = 5, threads: Threads = Threads()) -> GEMMMeasurement {
        var rng = SplitMix64(seed: 42)
        let a = (0..<(m * k)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let b = (0..<(n * k)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        var c32 = [Float](repeating: 0, count: m * n), c16 = c32
        var a16 = [UInt16](repeating: 0, count: m * k), b16 = [UInt16](repeating: 0, count: n * k)
        lt_f32_to_bf16(a, &a16, Int64(m * k))
        lt_f32_to_bf16(b, &b16, Int64(n * k))
        let flop = 2.0 * Double(m) * Double(n) * Double(k)
        func best(_ body: () -> Void) -> Double {
            body()  // warm-up: oneDNN builds its kernels on first use
            var t = Double.infinity
            for _ in 0..<max(1, repeats) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                t = min(t, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return flop / t / 1e9
        }
        let nc = CChar(UInt8(ascii: "N")), tc = CChar(UInt8(ascii: "T"))
        let f32 = best { _ = lt_sgemm(nc, tc, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), b, Int64(k), 0, &c32, Int64(n)) }
        guard BF16GEMM.available else { return GEMMMeasurement(m: m, n: n, k: k, f32GFLOPS: f32) }
        let bf16 = best {
            BF16GEMM.run(transposedB: true, m: m, n: n, k: k, a: a16, lda: k, b: b16, ldb: k, beta: 0, c: &c16, ldc: n,
                         threads: threads)
        }
        var dnnl: Double? = nil
        if lt_amx_available() != 0 && lt_bf16_gemm_available() != 0 {
            var c = [Float](repeating: 0, count: m * n)
            dnnl = best { _ = lt_gemm_bf16(nc, tc, Int64(m), Int64(n), Int64(k), 1, a16, Int64(k), b16, Int64(k), 0, &c, Int64(n)) }
        }
        let scale = c32.map(abs).max() ?? 1
        let err = zip(c32, c16).map { Double(abs($0 - $1)) }.max().map { $0 / Double(max(scale, 1e-30)) }
        return GEMMMeasurement(m: m, n: n, k: k, f32GFLOPS: f32, bf16GFLOPS: bf16, bf16Implementation: BF16GEMM.implementation,
                               oneDNNBF16GFLOPS: dnnl, bf16RelativeError: err)
    }
}
