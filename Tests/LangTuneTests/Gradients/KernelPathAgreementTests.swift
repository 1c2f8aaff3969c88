import CLangTuneKernels
import XCTest
@testable import LangTune

/// Every SIMD tier's bodies of every kernel (AVX2, AVX-512, NEON: those this CPU runs) agree with the
/// portable ones on the same inputs.
final class GradientsKernelPathAgreementTests: XCTestCase {
    /// The tier under comparison with portable in this pass of the test.
    private var simdTier = CPUTier.portable

    /// Runs `body` on the portable tier and on `simdTier`; returns both results.
    private func bothPaths<R>(_ body: () -> R) throws -> (portable: R, simd: R) {
        defer { try? simdTier.activate() }
        try CPUTier.portable.activate()
        let a = body()
        try simdTier.activate()
        XCTAssertEqual(CPUTier.active, simdTier)
        return (a, body())
    }

    func testAllKernelsAgree() throws {
        let tiers = CPUTier.runnable.filter { $0 != .portable }
        guard !tiers.isEmpty else { throw XCTSkip("no SIMD tier on this CPU") }
        let saved = CPUTier.active
        defer { try? saved.activate() }
        for tier in tiers {
            simdTier = tier
            try allKernelsAgree()
        }
    }

    private func allKernelsAgree() throws {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        func agree(_ r: (portable: [Float], simd: [Float]), _ what: String, rel: Double = 1e-5,
                   line: UInt = #line)
        {
            assertClose(r.simd, doubles(r.portable), rel: rel, "\(what): \(simdTier) vs portable", seed: seed, line: line)
        }

        let rows = 5, n = 131
        let x = rng.floats(rows * n, -3, 3), w = rng.floats(n), dy = rng.floats(rows * n)
        agree(try bothPaths { () -> [Float] in
            var y = [Float](repeating: 0, count: rows * n), rstd = [Float](repeating: 0, count: rows)
            ltt_rmsnorm_forward(x, w, &y, &rstd, Int64(rows), Int64(n), 1e-6)
            var dx = [Float](repeating: 0, count: rows * n), dw = [Float](repeating: 0, count: n)
            ltt_rmsnorm_backward(dy, x, w, rstd, &dx, &dw, 0, Int64(rows), Int64(n))
            return y + rstd + dx + dw
        }, "rmsnorm")

        let T = 141, nH = 6, nKV = 2, hd = 32
        let q = rng.floats(T * nH * hd, -2, 2), k = rng.floats(T * nKV * hd, -2, 2)
        let v = rng.floats(T * nKV * hd), dout = rng.floats(T * nH * hd)
        let positions = (0..<T).map { Int64($0 * 3) }
        let invFreq = (0..<hd / 2).map { Float(1 / pow(500000.0, Double(2 * $0) / Double(hd))) }
        let segment: [Int32] = (0..<T).map { $0 < 19 ? 0 : ($0 < 100 ? 1 : 2) }
        agree(try bothPaths { () -> [Float] in
            var qr = q
            ltt_rope_forward(&qr, Int64(T), Int64(nH), Int64(hd), positions, invFreq)
            var dq0 = dout
            ltt_rope_backward(&dq0, Int64(T), Int64(nH), Int64(hd), positions, invFreq)
            var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: nH * T)
            var fwdScratch = [Float](repeating: 0, count: Int(ltt_attention_forward_scratch_floats(Int64(hd))))
            ltt_attention_forward(qr, k, v, &out, &lse, Int64(T), Int64(nH), Int64(nKV), Int64(hd), 0.17, 0,
                                  Int64(nH), &fwdScratch, segment, 0)
            var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count)
            var dv = dk
            var scratch = [Float](repeating: 0, count: Int(ltt_attention_backward_scratch_floats(Int64(T), Int64(nH), Int64(nKV), Int64(hd))))
            ltt_attention_backward(qr, k, v, out, dout, lse, &dq, &dk, &dv, Int64(T), Int64(nH), Int64(nKV),
                                   Int64(hd), 0.17, 0, Int64(nKV), &scratch, segment, 0)
            return qr + dq0 + out + lse + dq + dk + dv
        }, "rope + attention", rel: 1e-4)

        // dg/du need their own upstream gradient of 777 values: the rmsnorm `dy` above holds only 655, and
        // reading past it fed uninitialised memory (sometimes inf) into both paths.
        let g = rng.floats(777, -9, 9), u = rng.floats(777), dyGated = rng.floats(777)
        agree(try bothPaths { () -> [Float] in
            var o = [Float](repeating: 0, count: 777), dg = o, du = o
            ltt_swiglu_forward(g, u, &o, 777)
            ltt_swiglu_backward(dyGated, g, u, &dg, &du, 777)
            return o + dg + du
        }, "swiglu")

        let vocab = 5003
        let logits = rng.floats(3 * vocab, -10, 10)
        let targets: [Int32] = [17, -100, 5000]
        agree(try bothPaths { () -> [Float] in
            var d = logits
            var losses = [Double](repeating: 0, count: 3)
            _ = ltt_cross_entropy_forward_backward(&d, targets, 3, Int64(vocab), 0.5, &losses)
            return d + losses.map { Float($0) }
        }, "cross-entropy")

        let p0 = rng.floats(300), grad = rng.floats(300)
        agree(try bothPaths { () -> [Float] in
            var p = p0, m = [Float](repeating: 0, count: 300), vv = m
            for step in 1...3 {
                ltt_adamw_step(&p, grad, &m, &vv, 300, 0.01, 0.9, 0.999, 1e-8, 0.01, Int64(step))
            }
            let sq = ltt_grad_sumsq(grad, 300)
            return p + m + vv + [Float(sq)]
        }, "adamw", rel: 1e-6)

        let dropped = try bothPaths { () -> [Float] in
            var o = [Float](repeating: 0, count: 1001)
            var mask = [UInt8](repeating: 0, count: 126)
            ltt_dropout_forward(g + g, &o, &mask, 1001, 0.1, 99, 12345)
            return o + mask.map { Float($0) }
        }
        XCTAssertEqual(dropped.simd, dropped.portable, "dropout must be bit-identical, seed \(seed)")
    }
}
