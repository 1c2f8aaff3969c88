import CLangTuneKernels
import XCTest

final class GradientsRoPETests: XCTestCase {
    /// Hugging Face rotate-half RoPE in Float64, the angle being the float32
    /// product position * invFreq as transformers computes it.
    private func reference(
        _ x: [Double], T: Int, heads: Int, hd: Int, positions: [Int64], invFreq: [Float], sign: Double
    ) -> [Double] {
        var y = x
        let half = hd / 2
        for t in 0..<T {
            for i in 0..<half {
                let a = Double(Float(positions[t]) * invFreq[i])
                let c = cos(a), s = sign * sin(a)
                for h in 0..<heads {
                    let lo = t * heads * hd + h * hd + i, hi = lo + half
                    y[lo] = x[lo] * c - x[hi] * s
                    y[hi] = x[hi] * c + x[lo] * s
                }
            }
        }
        return y
    }

    func testForwardAndBackwardAgainstFloat64() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        // hd 272: half of 136 crosses the kernel's 128-wide cos/sin chunk.
        for (T, heads, hd) in [(9, 3, 16), (5, 2, 272)] {
            let n = T * heads * hd
            let x = rng.floats(n), dy = rng.floats(n)
            let positions = (0..<T).map { _ in Int64(rng.int(9000)) }
            let invFreq = (0..<hd / 2).map { Float(1 / pow(10000.0, Double(2 * $0) / Double(hd))) }
            let xd = doubles(x), dyd = doubles(dy)
            let yRef = reference(xd, T: T, heads: heads, hd: hd, positions: positions, invFreq: invFreq, sign: 1)
            // L = sum(dy * rope(x)) is linear: its gradient is the transposed rotation of dy.
            let dxRef = reference(dyd, T: T, heads: heads, hd: hd, positions: positions, invFreq: invFreq, sign: -1)
            let idx = rng.sample(n, 40)
            let fd = centralDifference(xd, at: idx) {
                dot(dyd, self.reference($0, T: T, heads: heads, hd: hd, positions: positions, invFreq: invFreq, sign: 1))
            }
            let tag = "T\(T) heads\(heads) hd\(hd)"
            forEachKernelPath { path in
                var y = x
                ltt_rope_forward(&y, Int64(T), Int64(heads), Int64(hd), positions, invFreq)
                assertClose(y, yRef, rel: 1e-5, "\(path) \(tag) forward", seed: seed)
                var dx = dy
                ltt_rope_backward(&dx, Int64(T), Int64(heads), Int64(hd), positions, invFreq)
                assertClose(dx, dxRef, rel: 1e-4, "\(path) \(tag) backward", seed: seed)
                assertClose(idx.map { dx[$0] }, fd, rel: 1e-4, floor: rms(dxRef), "\(path) \(tag) backward vs FD", seed: seed)
                // The table variants give identical results.
                var cosT = [Float](repeating: .nan, count: T * hd / 2), sinT = cosT
                ltt_rope_table(positions, Int64(T), invFreq, Int64(hd / 2), &cosT, &sinT)
                var yt = x, dxt = dy
                ltt_rope_forward_table(&yt, Int64(T), Int64(heads), Int64(hd), cosT, sinT)
                ltt_rope_backward_table(&dxt, Int64(T), Int64(heads), Int64(hd), cosT, sinT)
                XCTAssertEqual(yt, y, "\(path) \(tag) table forward, seed \(seed)")
                XCTAssertEqual(dxt, dx, "\(path) \(tag) table backward, seed \(seed)")
                // Backward undoes forward (a rotation is orthogonal).
                ltt_rope_backward(&y, Int64(T), Int64(heads), Int64(hd), positions, invFreq)
                assertClose(y, xd, rel: 1e-5, "\(path) \(tag) backward(forward(x))", seed: seed)
            }
        }
    }
}
