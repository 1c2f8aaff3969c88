import ArgumentParser
import Foundation
import LangTune

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Matrix-product throughput: float32 against bfloat16 (LangTune's AMX kernel, oneDNN), same shapes, same run.",
        discussion: """
            Each shape MxNxK is C[M,N] = A[M,K]·B[N,K]ᵀ on random inputs, the best of --repeats runs
            per path after one warm-up. The defaults are the products of SmolLM2-135M training at 4×512
            tokens (attention, MLP up/down, the output head) and a square 4096³ product. bf16 runs on
            LangTune's AMX kernel where the CPU has AMX-BF16 (oneDNN's bf16 GEMM is measured beside it
            when libdnnl is installed), else on oneDNN with AVX512-BF16; without either only float32 is shown.

            Examples:
              langtune bench gemm
              langtune bench gemm --shapes 2048x1536x576,4096x4096x4096 --json
            """)

    @Option(help: "Comma-separated MxNxK shapes.")
    var shapes: String = "2048x576x576,2048x1536x576,2048x576x1536,2048x49152x576,4096x4096x4096"
    @Option(help: "Timed repetitions per shape and path.") var repeats: Int = 5
    @Option(help: "Worker threads (default: all cores).") var threads: Int?
    @Flag(help: "Print JSON.") var json = false

    func parsedShapes() throws -> [(Int, Int, Int)] {
        try shapes.split(separator: ",").map { s in
            let d = s.split(separator: "x").compactMap { Int($0) }
            guard d.count == 3, d.allSatisfy({ $0 > 0 }) else { throw ValidationError("--shapes: \(s) is not MxNxK") }
            return (d[0], d[1], d[2])
        }
    }

    func validate() throws {
        _ = try parsedShapes()
        if repeats < 1 { throw ValidationError("--repeats must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        if let t = threads { setenv("OMP_NUM_THREADS", String(t), 1) }
        let results = try parsedShapes().map { GEMMMeasurement.measure(m: $0.0, n: $0.1, k: $0.2, repeats: repeats, threads: Threads(threads)) }
        let peak = results.compactMap(\.bf16GFLOPS).max()
        if json {
            struct Out: Encodable { let shapes: [GEMMMeasurement]; let bf16_peak_gflops: Double?; let f32_peak_gflops: Double; let backend: String }
            try printJSON(Out(shapes: results, bf16_peak_gflops: peak, f32_peak_gflops: results.map(\.f32GFLOPS).max() ?? 0,
                              backend: CPUBackend(threads: Threads(threads)).name))
            return
        }
        print(CPUBackend(threads: Threads(threads)).name + ", bf16 products: " + (results.first?.bf16Implementation ?? "none"))
        for r in results {
            var bf = r.bf16GFLOPS.map { String(format: "bf16 %7.1f GFLOP/s (%.2fx, rel. error %.1e)", $0, $0 / r.f32GFLOPS, r.bf16RelativeError ?? 0) }
                ?? "bf16 unavailable"
            if let d = r.oneDNNBF16GFLOPS, let b = r.bf16GFLOPS {
                bf += String(format: "   oneDNN bf16 %7.1f GFLOP/s (AMX kernel %.2fx)", d, b / d)
            }
            print(String(format: "%5d x %6d x %5d   f32 %7.1f GFLOP/s   %@", r.m, r.n, r.k, r.f32GFLOPS, bf))
        }
    }
}
