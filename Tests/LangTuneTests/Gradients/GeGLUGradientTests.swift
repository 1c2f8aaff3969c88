import CLangTuneKernels
import XCTest

/// Gemma's gate, gelu_pytorch_tanh(g) * u, against Float64 and finite differences on every tier.
final class GradientsGeGLUTests: XCTestCase {
    private let k = (2 / Double.pi).squareRoot()

    /// The definition, tanh form (PyTorch's gelu(approximate="tanh")).
    private func geluTanh(_ g: Double) -> Double { 0.5 * g * (1 + tanh(k * (g + 0.044715 * g * g * g))) }

    /// The same function as g * sigmoid(2z): exact in Float64 where 1 + tanh(z) cancels (g << 0).
    private func gelu(_ g: Double) -> Double { g / (1 + exp(-2 * k * (g + 0.044715 * g * g * g))) }

    /// d/dg of the tanh form, written out from the tanh form (not from the kernel's sigmoid form).
    private func geluPrime(_ g: Double) -> Double {
        let t = tanh(k * (g + 0.044715 * g * g * g))
        return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * k * (1 + 3 * 0.044715 * g * g)
    }

    func testForwardAndBackwardAgainstFloat64() {
        // Both forms agree to Float64 rounding where the tanh form does not cancel.
        for x in stride(from: -3.0, through: 6.0, by: 0.25) {
            XCTAssertEqual(gelu(x), geluTanh(x), accuracy: 1e-14 * max(1, abs(x)))
        }
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        var g = rng.floats(203, -6, 6)
        g[0] = -95  // the sigmoid's exp overflows: gelu is -0, gelu' is 0
        g[1] = 95
        g[2] = -9  // gelu(-9) is about -2e-28: the tanh form would give 0 even in Float64
        let check = GatedActivationCheck(
            forward: { ltt_geglu_forward($0, $1, $2, $3) }, backward: { ltt_geglu_backward($0, $1, $2, $3, $4, $5) },
            act: gelu, actPrime: geluPrime, relForward: 1e-6, relBackward: 1e-5)
        check.run(g: g, rng: &rng, seed: seed) { path, out, outRef, dg, dgRef in
            XCTAssertEqual(out[0], 0, "\(path) seed \(seed)")
            XCTAssertEqual(Double(out[1]), outRef[1], accuracy: abs(outRef[1]) * 1e-6, "\(path) seed \(seed)")
            XCTAssertEqual(Double(out[2]), outRef[2], accuracy: abs(outRef[2]) * 1e-4, "\(path) seed \(seed)")
            XCTAssertEqual(dg[0], 0, "\(path) seed \(seed)")
            XCTAssertEqual(Double(dg[1]), dgRef[1], accuracy: abs(dgRef[1]) * 1e-6, "\(path) seed \(seed)")
        }
        // The inference entry point is the same kernel.
        let u = rng.floats(g.count)
        forEachKernelPath { path in
            var a = [Float](repeating: .nan, count: g.count), b = a
            lt_geglu(g, u, &a, Int64(g.count))
            ltt_geglu_forward(g, u, &b, Int64(g.count))
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(path) lt_geglu seed \(seed)")
        }
    }
}
