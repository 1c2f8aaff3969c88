import CLangTuneKernels
import XCTest

final class GradientsRMSNormTests: XCTestCase {
    /// y = w * x * r per row, r = 1/sqrt(mean(x^2) + eps), in Float64.
    private func reference(_ x: [Double], _ w: [Double], rows: Int, n: Int, eps: Double)
        -> (y: [Double], rstd: [Double])
    {
        var y = [Double](repeating: 0, count: rows * n), rstd = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            var ss = 0.0
            for i in 0..<n { ss += x[r * n + i] * x[r * n + i] }
            rstd[r] = 1 / (ss / Double(n) + eps).squareRoot()
            for i in 0..<n { y[r * n + i] = w[i] * x[r * n + i] * rstd[r] }
        }
        return (y, rstd)
    }

    func testForwardAndBackwardAgainstFloat64() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        let rows = 7, n = 67, eps: Float = 1e-5
        let x = rng.floats(rows * n, -2, 2), w = rng.floats(n, 0.5, 1.5), dy = rng.floats(rows * n)
        let dw0 = rng.floats(n)
        let xd = doubles(x), wd = doubles(w), dyd = doubles(dy)
        let (yRef, rstdRef) = reference(xd, wd, rows: rows, n: n, eps: Double(eps))

        // Analytic Float64 gradient of L = sum(dy * y).
        var dxRef = [Double](repeating: 0, count: rows * n), dwRef = doubles(dw0)
        for r in 0..<rows {
            let rs = rstdRef[r]
            var s = 0.0
            for i in 0..<n { s += dyd[r * n + i] * wd[i] * xd[r * n + i] }
            for j in 0..<n {
                dxRef[r * n + j] = rs * wd[j] * dyd[r * n + j] - xd[r * n + j] * rs * rs * rs * s / Double(n)
                dwRef[j] += dyd[r * n + j] * xd[r * n + j] * rs
            }
        }
        let loss = { (x: [Double], w: [Double]) in
            dot(dyd, self.reference(x, w, rows: rows, n: n, eps: Double(eps)).y)
        }
        let xIdx = rng.sample(rows * n, 40), wIdx = rng.sample(n, 20)
        let fdX = centralDifference(xd, at: xIdx) { loss($0, wd) }
        let fdW = centralDifference(wd, at: wIdx) { loss(xd, $0) }

        forEachKernelPath { path in
            var y = [Float](repeating: .nan, count: rows * n), rstd = [Float](repeating: .nan, count: rows)
            ltt_rmsnorm_forward(x, w, &y, &rstd, Int64(rows), Int64(n), eps)
            assertClose(y, yRef, rel: 1e-5, "\(path) y", seed: seed)
            assertClose(rstd, rstdRef, rel: 1e-5, "\(path) rstd", seed: seed)

            var dx = [Float](repeating: .nan, count: rows * n), dw = dw0
            ltt_rmsnorm_backward(dy, x, w, rstd, &dx, &dw, 0, 3, Int64(n))
            ltt_rmsnorm_backward(dy, x, w, rstd, &dx, &dw, 3, Int64(rows), Int64(n))
            assertClose(dx, dxRef, rel: 1e-4, "\(path) dx", seed: seed)
            let dwDelta = zip(dw, dw0).map { Double($0) - Double($1) }
            let dwRefDelta = zip(dwRef, dw0).map { $0 - Double($1) }
            assertClose(dw, dwRef, rel: 1e-4, floor: rms(dwRefDelta), "\(path) dw", seed: seed)
            XCTAssertGreaterThan(rms(dwDelta), 0)
            assertClose(xIdx.map { dx[$0] }, fdX, rel: 1e-4, floor: rms(dxRef), "\(path) dx vs FD", seed: seed)
            assertClose(wIdx.map { dw[$0] - dw0[$0] }, fdW, rel: 1e-4, floor: rms(dwRefDelta),
                        "\(path) dw vs FD", seed: seed)

            // No dw requested; dx written over dy in place.
            var dyInPlace = dy
            dyInPlace.withUnsafeMutableBufferPointer { p in
                ltt_rmsnorm_backward(p.baseAddress, x, w, rstd, p.baseAddress, nil, 0, Int64(rows), Int64(n))
            }
            assertClose(dyInPlace, dxRef, rel: 1e-4, "\(path) dx aliasing dy", seed: seed)
        }
    }
}
