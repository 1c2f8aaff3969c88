import CLangTuneKernels
import XCTest

final class GradientsSwiGLUTests: XCTestCase {
    private func silu(_ g: Double) -> Double { g / (1 + exp(-g)) }

    func testForwardAndBackwardAgainstFloat64() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        let n = 203
        var g = rng.floats(n, -8, 8)
        g[0] = -95  // sigmoid underflows in float32
        g[1] = 95
        let u = rng.floats(n, -2, 2), dout = rng.floats(n)
        let gd = doubles(g), ud = doubles(u), dd = doubles(dout)
        let outRef = (0..<n).map { silu(gd[$0]) * ud[$0] }
        var dgRef = [Double](), duRef = [Double]()
        for i in 0..<n {
            let s = 1 / (1 + exp(-gd[i]))
            dgRef.append(dd[i] * ud[i] * s * (1 + gd[i] * (1 - s)))
            duRef.append(dd[i] * silu(gd[i]))
        }
        let loss = { (g: [Double], u: [Double]) in (0..<n).reduce(0.0) { $0 + dd[$1] * self.silu(g[$1]) * u[$1] } }
        let gIdx = rng.sample(n, 40), uIdx = rng.sample(n, 40)
        let fdG = centralDifference(gd, at: gIdx) { loss($0, ud) }
        let fdU = centralDifference(ud, at: uIdx) { loss(gd, $0) }

        forEachKernelPath { path in
            var out = [Float](repeating: .nan, count: n)
            ltt_swiglu_forward(g, u, &out, Int64(n))
            assertClose(out, outRef, rel: 1e-5, "\(path) out", seed: seed)
            var dg = [Float](repeating: .nan, count: n), du = [Float](repeating: .nan, count: n)
            ltt_swiglu_backward(dout, g, u, &dg, &du, Int64(n))
            assertClose(dg, dgRef, rel: 1e-4, "\(path) dg", seed: seed)
            assertClose(du, duRef, rel: 1e-4, "\(path) du", seed: seed)
            assertClose(gIdx.map { dg[$0] }, fdG, rel: 1e-4, floor: rms(dgRef), "\(path) dg vs FD", seed: seed)
            assertClose(uIdx.map { du[$0] }, fdU, rel: 1e-4, floor: rms(duRef), "\(path) du vs FD", seed: seed)
            // Far tails: silu(-95) is ~0 and silu(95) is 95 to float precision.
            XCTAssertEqual(Double(out[0]), outRef[0], accuracy: 1e-30, "\(path) seed \(seed)")
            XCTAssertEqual(Double(out[1]), outRef[1], accuracy: abs(outRef[1]) * 1e-6, "\(path) seed \(seed)")
        }
    }
}
