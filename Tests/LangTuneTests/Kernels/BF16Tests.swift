import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// bfloat16 products (`--dtype bf16`): the conversion rounds exactly like PyTorch (nearest even) on
/// every path, and the bf16 GEMMs equal float64 products of the bf16-rounded operands up to float32
/// accumulation (1e-5 relative), forward and for the input gradient, dense and tiled.
final class BF16Tests: XCTestCase {
    func testConversionRoundsToNearestEvenOnEveryPath() {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        var x: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, Float(bitPattern: 0x7F80_0001), Float.leastNonzeroMagnitude,
                          -Float.leastNormalMagnitude, Float.greatestFiniteMagnitude,
                          Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_7FFF)]
        x += (0..<1000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        let want = x.map { BFloat16Bits.fromFloat($0) }
        CPUTier.forEachRunnable { tier in
            var got = [UInt16](repeating: 0, count: x.count)
            lt_f32_to_bf16(x, &got, Int64(x.count))
            XCTAssertEqual(got, want, "\(tier)")
            var back = [Float](repeating: 0, count: x.count)
            lt_bf16_to_f32(want, &back, Int64(x.count))
            for (b, w) in zip(back, want) { XCTAssertEqual(b.bitPattern, UInt32(w) << 16, "\(tier)") }
        }
    }

    func rounded(_ v: [Float]) -> [Double] { v.map { Double(BFloat16Bits.toFloat(BFloat16Bits.fromFloat($0))) } }

    func testProductsEqualFloat64OfRoundedOperands() throws {
        guard lt_bf16_products_available() != 0 else { throw XCTSkip("no bf16 GEMM here (AMX, or oneDNN + AVX512-BF16 needed)") }
        // Every implementation present: LangTune's AMX kernel, then oneDNN's.
        var impls: [Int32] = []
        if lt_amx_available() != 0 { impls.append(1) }
        if lt_bf16_gemm_available() != 0 { impls.append(0) }
        defer { lt_set_amx_enabled(1) }
        for amx in impls {
            lt_set_amx_enabled(amx)
            try productsEqualFloat64OfRoundedOperands(BF16GEMM.implementation)
        }
    }

    func productsEqualFloat64OfRoundedOperands(_ impl: String) throws {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        let backend = CPUBackend(threads: Threads(2), bf16: true)
        let rows = 7, out = 300, inF = 520
        let values = (0..<(out * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) * 0.05 }
        let dense = LinearWeight(out: out, in: inF, values: values)
        dense.prepareBF16()
        let nf4 = LinearWeight(nf4: NF4Tensor.quantize(values, shape: [out, inF]))
        let x = (0..<(rows * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let dy = (0..<(rows * out)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        for (label, w) in [("dense", dense), ("nf4 tiles", nf4)] {
            let wr = rounded(w.floatValues()), xr = rounded(x), dyr = rounded(dy)
            var y = [Float](repeating: 0, count: rows * out)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { backend.linear(w, x: xp.baseAddress!, rows: rows, y: $0.baseAddress!) } }
            var worst = 0.0, scale = 0.0
            for r in 0..<rows { for j in 0..<out {
                var s = 0.0
                for k in 0..<inF { s += xr[r * inF + k] * wr[j * inF + k] }
                worst = max(worst, abs(Double(y[r * out + j]) - s)); scale = max(scale, abs(s))
            } }
            XCTAssertLessThan(worst / scale, 1e-5, "\(impl), \(label) forward")

            // dx = dy · W, the product the training graph's backward pass uses.
            var dx = [Float](repeating: 0, count: rows * inF)
            dy.withUnsafeBufferPointer { d in dx.withUnsafeMutableBufferPointer {
                backend.linearBackwardInput(w, dy: d.baseAddress!, rows: rows, dx: $0.baseAddress!, accumulate: false)
            } }
            worst = 0; scale = 0
            for r in 0..<rows { for k in 0..<inF {
                var s = 0.0
                for j in 0..<out { s += dyr[r * out + j] * wr[j * inF + k] }
                worst = max(worst, abs(Double(dx[r * inF + k]) - s)); scale = max(scale, abs(s))
            } }
            XCTAssertLessThan(worst / scale, 1e-5, "\(impl), \(label) backward")
        }
    }

    /// The AMX kernel on its own: edges in every dimension (rows, columns and depth not multiples of
    /// the 16/32 tiles, depth over one 768-deep pass), both layouts of B, beta 0/1/other, strides wider
    /// than the matrices (odd ldb included), a column range that starts mid-panel; columns outside the
    /// range stay untouched. Bound: float32 accumulation of exact bf16 products, 1e-6 of Σ|terms|.
    func testAMXKernelEqualsFloat64OnEdgeShapes() throws {
        guard lt_amx_available() != 0 else { throw XCTSkip("no AMX-BF16 here (or the kernel refused the tile state)") }
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        let cases: [(m: Int, n: Int, k: Int, tb: Bool, beta: Float, n0: Int, n1: Int, pad: Int)] = [
            (1, 1, 1, true, 0, 0, 1, 0), (33, 17, 31, false, 1, 0, 17, 3), (64, 64, 64, true, 1, 0, 64, 0),
            (37, 45, 70, true, 0.5, 5, 40, 1), (70, 100, 1100, false, 0, 32, 100, 2), (32, 96, 1600, true, 1, 0, 96, 0),
            (100, 200, 576, true, 0, 0, 200, 0), (65, 48, 192, false, 1, 16, 48, 5),
        ]
        for cs in cases {
            let lda = cs.k + cs.pad, ldc = cs.n + cs.pad
            let ldb = (cs.tb ? cs.k : cs.n) + cs.pad
            let a = (0..<(cs.m * lda)).map { _ in BFloat16Bits.fromFloat(Float(rng.nextDouble() * 2 - 1)) }
            let b = (0..<((cs.tb ? cs.n : cs.k) * ldb)).map { _ in BFloat16Bits.fromFloat(Float(rng.nextDouble() * 2 - 1)) }
            let c0 = (0..<(cs.m * ldc)).map { _ in Float(rng.nextDouble() * 2 - 1) }
            var c = c0
            let rc = lt_gemm_bf16_amx(CChar(UInt8(ascii: cs.tb ? "T" : "N")), Int64(cs.m), Int64(cs.n), Int64(cs.k), 1, a, Int64(lda),
                                      b, Int64(ldb), cs.beta, &c, Int64(ldc), Int64(cs.n0), Int64(cs.n1))
            XCTAssertEqual(rc, 0)
            let label = "M\(cs.m) N\(cs.n) K\(cs.k) \(cs.tb ? "T" : "N") beta \(cs.beta) cols \(cs.n0)..<\(cs.n1)"
            var worst = 0.0
            for i in 0..<cs.m {
                for j in 0..<ldc {
                    let got = Double(c[i * ldc + j])
                    guard j >= cs.n0 && j < cs.n1 else {
                        XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "\(label): column \(j) outside the range changed"); continue
                    }
                    var s = Double(cs.beta) * Double(c0[i * ldc + j]), mag = abs(s)
                    for t in 0..<cs.k {
                        let bv = cs.tb ? b[j * ldb + t] : b[t * ldb + j]
                        let p = Double(BFloat16Bits.toFloat(a[i * lda + t])) * Double(BFloat16Bits.toFloat(bv))
                        s += p; mag += abs(p)
                    }
                    worst = max(worst, abs(got - s) / max(mag, 1e-30))
                }
            }
            XCTAssertLessThan(worst, 1e-6, label)
        }
        // alpha other than 1 is refused (callers fall back), C untouched.
        var c: [Float] = [7]
        XCTAssertEqual(lt_gemm_bf16_amx(CChar(UInt8(ascii: "T")), 1, 1, 1, 2, [0x3F80], 1, [0x3F80], 1, 0, &c, 1, 0, 1), -1)
        XCTAssertEqual(c, [7])
    }

    /// Where oneDNN's bf16 GEMM runs on the same tiles, LangTune's kernel gives the same bits (both
    /// accumulate 32-deep tile products in float32 in k order), so switching implementations does not
    /// move a loss curve.
    func testAMXKernelGivesOneDNNsBits() throws {
        guard lt_amx_available() != 0, lt_bf16_gemm_available() != 0 else { throw XCTSkip("needs both AMX and oneDNN's bf16 GEMM") }
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        for (m, n, k) in [(96, 320, 576), (200, 192, 1536)] {
            for tb in ["T", "N"] {
                let a = (0..<(m * k)).map { _ in BFloat16Bits.fromFloat(Float(rng.nextDouble() * 2 - 1)) }
                let b = (0..<(n * k)).map { _ in BFloat16Bits.fromFloat(Float(rng.nextDouble() * 2 - 1)) }
                let t = CChar(UInt8(ascii: tb == "T" ? "T" : "N")), ldb = tb == "T" ? k : n
                var c1 = [Float](repeating: 0, count: m * n), c2 = c1
                XCTAssertEqual(lt_gemm_bf16_amx(t, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), b, Int64(ldb), 0, &c1, Int64(n), 0, Int64(n)), 0)
                XCTAssertEqual(lt_gemm_bf16(CChar(UInt8(ascii: "N")), t, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), b, Int64(ldb), 0, &c2, Int64(n)), 0)
                XCTAssertEqual(c1.map(\.bitPattern), c2.map(\.bitPattern), "\(m)x\(n)x\(k) \(tb)")
            }
        }
    }
}
