import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// LoRA's rank-r products (`ltt_combine`, `LoRAWeights.addForward` / `backward`) against float64 on
/// fresh random inputs: narrow (n <= 16) and wide outputs, row counts off the 4/8-row blocks, a
/// transposed operand, every kernel tier this CPU runs, and rank 5 and 16 with 2 threads.
final class LoRAProductsTests: XCTestCase {
    var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
    func rand(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.nextDouble() * 2 - 1) } }

    func testCombineEqualsFloat64() {
        CPUTier.forEachRunnable { simd in
            for (ny, m, n, transposedC) in [(1, 1, 1, false), (7, 33, 5, false), (9, 70, 16, true), (13, 40, 17, false),
                                             (16, 300, 70, true), (5, 64, 130, false)] {
                let ldy = n + 3, ldx = n + 1
                let crs = transposedC ? 1 : m, ccs = transposedC ? ny : 1
                let c = rand(ny * m), x = rand(m * ldx), y0 = rand(ny * ldy)
                var y = y0
                ltt_combine(&y, Int64(ldy), Int64(ny), c, Int64(crs), Int64(ccs), x, Int64(ldx), Int64(m), Int64(n))
                for i in 0..<ny {
                    for j in 0..<ldy {
                        guard j < n else { XCTAssertEqual(y[i * ldy + j], y0[i * ldy + j]); continue }
                        var s = Double(y0[i * ldy + j]), mag = abs(s)
                        for t in 0..<m { let p = Double(c[i * crs + t * ccs]) * Double(x[t * ldx + j]); s += p; mag += abs(p) }
                        XCTAssertLessThan(abs(Double(y[i * ldy + j]) - s), 1e-6 * mag + 1e-30,
                                          "simd \(simd) ny \(ny) m \(m) n \(n) (\(i), \(j))")
                    }
                }
            }
        }
    }

    func testForwardAndBackwardEqualFloat64() {
        for (r, inF, outF, rows) in [(16, 70, 45, 37), (5, 33, 130, 9)] {
            let lw = LoRAWeights(rank: r, inFeatures: inF, outFeatures: outF, a: FloatBuffer(rand(r * inF)), b: FloatBuffer(rand(outF * r)))
            let a = Array(UnsafeBufferPointer(start: lw.a.pointer, count: r * inF)), b = Array(UnsafeBufferPointer(start: lw.b.pointer, count: outF * r))
            let x = rand(rows * inF), y0 = rand(rows * outF), dy = rand(rows * outF), scale: Float = 1.7
            var y = y0, t = [Float](repeating: 0, count: rows * r)
            var scratch = [Float](repeating: 0, count: max(lw.forwardScratchCount, lw.backwardScratchCount(rows: rows)))
            lw.addForward(x: x, rows: rows, y: &y, scale: scale, t: &t, scratch: &scratch, threads: Threads(2))
            // float64: t = x Aᵀ, y = y0 + scale t Bᵀ, dt = scale dy B, dA = dtᵀ x, dB = scale dyᵀ t, dx = dt A
            var t64 = [Double](repeating: 0, count: rows * r)
            for i in 0..<rows { for j in 0..<r { for k in 0..<inF { t64[i * r + j] += Double(x[i * inF + k]) * Double(a[j * inF + k]) } } }
            func check(_ got: [Float], _ want: [Double], _ what: String) {
                let scaleW = want.map(abs).max()!
                let worst = zip(got, want).map { abs(Double($0) - $1) }.max()!
                XCTAssertLessThan(worst / scaleW, 1e-5, "r\(r) \(what)")
            }
            check(t, t64, "t")
            var y64 = y0.map(Double.init)
            for i in 0..<rows { for o in 0..<outF { for j in 0..<r { y64[i * outF + o] += Double(scale) * t64[i * r + j] * Double(b[o * r + j]) } } }
            check(y, y64, "y")
            // The inference form: dot products for a few rows (9), addForward for many (37).
            var yInf = y0
            lw.add(x: x, rows: rows, y: &yInf, scale: scale, threads: Threads(2))
            check(yInf, y64, "y (add, \(rows) rows)")

            var gA = [Float](repeating: 0.5, count: r * inF), gB = [Float](repeating: -0.25, count: outF * r)
            let dx0 = rand(rows * inF)
            var dx = dx0
            lw.backward(dy: dy, t: t, input: x, rows: rows, scale: scale, gradA: &gA, gradB: &gB, dIn: &dx, accumulate: true,
                        scratch: &scratch, threads: Threads(2))
            var dt = [Double](repeating: 0, count: rows * r)
            for i in 0..<rows { for j in 0..<r { for o in 0..<outF { dt[i * r + j] += Double(scale) * Double(dy[i * outF + o]) * Double(b[o * r + j]) } } }
            var gA64 = [Double](repeating: 0.5, count: r * inF), gB64 = [Double](repeating: -0.25, count: outF * r), dx64 = dx0.map(Double.init)
            for i in 0..<rows {
                for j in 0..<r {
                    for k in 0..<inF { gA64[j * inF + k] += dt[i * r + j] * Double(x[i * inF + k]); dx64[i * inF + k] += dt[i * r + j] * Double(a[j * inF + k]) }
                    for o in 0..<outF { gB64[o * r + j] += Double(scale) * Double(dy[i * outF + o]) * Double(t[i * r + j]) }
                }
            }
            check(gA, gA64, "dA")
            check(gB, gB64, "dB")
            check(dx, dx64, "dx")
            var fresh = [Float](repeating: 9, count: rows * inF)
            lw.backward(dy: dy, t: t, input: x, rows: rows, scale: scale, gradA: &gA, gradB: &gB, dIn: &fresh, accumulate: false,
                        scratch: &scratch, threads: Threads(2))
            check(fresh, zip(dx64, dx0).map { $0 - Double($1) }, "dx overwritten")
        }
    }
}
