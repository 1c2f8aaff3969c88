import CLangTuneKernels
import XCTest

/// A gated activation's kernels, out = act(g) * u and its backward, against Float64 (act, act') and
/// central differences of the Float64 forward, on every tier. `g` carries the caller's extreme gates;
/// `tails` checks them element by element (the RMS floor of the bulk checks would hide them).
struct GatedActivationCheck {
    typealias Forward = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int64) -> Void
    typealias Backward = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                          UnsafeMutablePointer<Float>, Int64) -> Void
    let forward: Forward, backward: Backward
    let act: (Double) -> Double, actPrime: (Double) -> Double
    let relForward: Double, relBackward: Double

    func run(g: [Float], rng: inout GradRNG, seed: UInt64,
             tails: (_ path: String, _ out: [Float], _ outRef: [Double], _ dg: [Float], _ dgRef: [Double]) -> Void) {
        let n = g.count
        let u = rng.floats(n, -2, 2), dout = rng.floats(n)
        let gd = doubles(g), ud = doubles(u), dd = doubles(dout)
        let outRef = (0..<n).map { act(gd[$0]) * ud[$0] }
        let dgRef = (0..<n).map { dd[$0] * ud[$0] * actPrime(gd[$0]) }
        let duRef = (0..<n).map { dd[$0] * act(gd[$0]) }
        let loss = { (g: [Double], u: [Double]) in (0..<n).reduce(0.0) { $0 + dd[$1] * self.act(g[$1]) * u[$1] } }
        let gIdx = rng.sample(n, 40), uIdx = rng.sample(n, 40)
        let fdG = centralDifference(gd, at: gIdx) { loss($0, ud) }
        let fdU = centralDifference(ud, at: uIdx) { loss(gd, $0) }

        forEachKernelPath { path in
            var out = [Float](repeating: .nan, count: n)
            forward(g, u, &out, Int64(n))
            assertClose(out, outRef, rel: relForward, "\(path) out", seed: seed)
            var dg = [Float](repeating: .nan, count: n), du = [Float](repeating: .nan, count: n)
            backward(dout, g, u, &dg, &du, Int64(n))
            assertClose(dg, dgRef, rel: relBackward, "\(path) dg", seed: seed)
            assertClose(du, duRef, rel: relBackward, "\(path) du", seed: seed)
            assertClose(gIdx.map { dg[$0] }, fdG, rel: 1e-4, floor: rms(dgRef), "\(path) dg vs FD", seed: seed)
            assertClose(uIdx.map { du[$0] }, fdU, rel: 1e-4, floor: rms(duRef), "\(path) du vs FD", seed: seed)
            tails(path, out, outRef, dg, dgRef)
        }
    }
}

final class GradientsSwiGLUTests: XCTestCase {
    private func silu(_ g: Double) -> Double { g / (1 + exp(-g)) }

    func testForwardAndBackwardAgainstFloat64() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        var g = rng.floats(203, -8, 8)
        g[0] = -95  // sigmoid underflows in float32
        g[1] = 95
        let check = GatedActivationCheck(
            forward: { ltt_swiglu_forward($0, $1, $2, $3) }, backward: { ltt_swiglu_backward($0, $1, $2, $3, $4, $5) },
            act: silu, actPrime: { g in let s = 1 / (1 + exp(-g)); return s * (1 + g * (1 - s)) },
            relForward: 1e-5, relBackward: 1e-4)
        check.run(g: g, rng: &rng, seed: seed) { path, out, outRef, _, _ in
            // Far tails: silu(-95) is ~0 and silu(95) is 95 to float precision.
            XCTAssertEqual(Double(out[0]), outRef[0], accuracy: 1e-30, "\(path) seed \(seed)")
            XCTAssertEqual(Double(out[1]), outRef[1], accuracy: abs(outRef[1]) * 1e-6, "\(path) seed \(seed)")
        }
    }
}
