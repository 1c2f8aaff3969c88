import CLangTuneKernels
import XCTest

final class GradientsAdamWTests: XCTestCase {
    private struct Hyper {
        let lr: Double, beta1: Double, beta2: Double, eps: Double, wd: Double
    }

    /// torch.optim.AdamW's single-tensor update written out in Float64.
    private func stepFloat64(_ p: inout [Double], _ m: inout [Double], _ v: inout [Double], _ g: [Float],
                             _ h: Hyper, step: Int)
    {
        let bc1 = 1 - pow(h.beta1, Double(step)), bc2 = 1 - pow(h.beta2, Double(step))
        for i in 0..<p.count {
            let gi = Double(g[i])
            p[i] *= 1 - h.lr * h.wd
            m[i] += (1 - h.beta1) * (gi - m[i])
            v[i] = v[i] * h.beta2 + (1 - h.beta2) * gi * gi
            let denom = v[i].squareRoot() / bc2.squareRoot() + h.eps
            p[i] -= h.lr / bc1 * m[i] / denom
        }
    }

    /// The same update in float32 with PyTorch's operation order: scalars in
    /// double rounded to float, lerp's two branches, addcmul, addcdiv.
    private func stepFloat32(_ p: inout [Float], _ m: inout [Float], _ v: inout [Float], _ g: [Float],
                             _ h: Hyper, step: Int)
    {
        let bc1 = 1 - pow(h.beta1, Double(step)), bc2 = 1 - pow(h.beta2, Double(step))
        let decay = Float(1 - h.lr * h.wd), w = Float(1 - h.beta1), b2 = Float(h.beta2), omb2 = Float(1 - h.beta2)
        let bc2s = Float(bc2.squareRoot()), eps = Float(h.eps), negStep = Float(-(h.lr / bc1))
        for i in 0..<p.count {
            p[i] = p[i] * decay
            m[i] = abs(w) < 0.5 ? m[i] + w * (g[i] - m[i]) : g[i] - (g[i] - m[i]) * (1 - w)
            v[i] = v[i] * b2 + omb2 * g[i] * g[i]
            let denom = v[i].squareRoot() / bc2s + eps
            p[i] = p[i] + negStep * m[i] / denom
        }
    }

    func testThreeStepsMatchPyTorchFormula() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        let n = 45
        // beta1 0.9 takes lerp's small-weight branch, 0.3 the other one.
        for h in [Hyper(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-6, wd: 0.1),
                  Hyper(lr: 0.02, beta1: 0.3, beta2: 0.95, eps: 1e-8, wd: 0.0)]
        {
            let p0 = rng.floats(n)
            var p = p0, m = [Float](repeating: 0, count: n), v = m
            var pd = doubles(p0), md = [Double](repeating: 0, count: n), vd = md
            var pf = p0, mf = m, vf = m
            for step in 1...3 {
                var g = rng.floats(n)
                // Tiny gradients make eps's place in the denominator visible.
                for i in 0..<6 { g[i] = Float(i % 2 == 0 ? 1 : -1) * 1e-7 }
                g[6] = 0
                let tag = "beta1 \(h.beta1) step \(step)"
                ltt_adamw_step(&p, g, &m, &v, Int64(n), h.lr, h.beta1, h.beta2, h.eps, h.wd, Int64(step))
                stepFloat64(&pd, &md, &vd, g, h, step: step)
                stepFloat32(&pf, &mf, &vf, g, h, step: step)
                assertClose(m, md, rel: 1e-5, "\(tag) exp_avg", seed: seed)
                assertClose(v, vd, rel: 1e-5, floor: 1e-30, "\(tag) exp_avg_sq", seed: seed)
                // The parameters move by about lr per step: compare the movement
                // (a few float32 ulps of the parameter are ~1e-5 of it).
                let moved = zip(p, p0).map { $0 - $1 }
                let movedRef = zip(pd, p0).map { $0 - Double($1) }
                assertClose(moved, movedRef, rel: 1e-4, "\(tag) param - param0 vs Float64", seed: seed)
                // Same operations in float32: equal up to rounding (FMA contraction).
                assertClose(p, doubles(pf), rel: 1e-6, "\(tag) param vs float32 PyTorch order", seed: seed)
                assertClose(m, doubles(mf), rel: 1e-6, "\(tag) exp_avg vs float32 PyTorch order", seed: seed)
                assertClose(v, doubles(vf), rel: 1e-6, floor: 1e-30, "\(tag) exp_avg_sq vs float32 PyTorch order", seed: seed)
            }
        }
    }

    func testGradSumOfSquaresAndScale() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        let n = 1037
        let g = rng.floats(n, -3, 3)
        let ref = g.reduce(0.0) { $0 + Double($1) * Double($1) }
        forEachKernelPath { path in
            let s = ltt_grad_sumsq(g, Int64(n))
            XCTAssertEqual(s, ref, accuracy: ref * 1e-12, "\(path) seed \(seed)")
            var x = g
            ltt_scale(&x, Int64(n), 0.37)
            XCTAssertEqual(x, g.map { $0 * 0.37 }, "\(path) seed \(seed)")
        }
    }
}
