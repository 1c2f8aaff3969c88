import CLangTuneKernels
import XCTest

/// Naive Float64 attention: full score matrix, explicit mask (causal, inside a segment, and with a
/// window w > 0 only keys with t - j < w: transformers' sliding_window_overlay).
private struct AttentionReference {
    let T: Int, nH: Int, nKV: Int, hd: Int, scale: Double
    let visible: [[Bool]]  // [t][j]

    init(T: Int, nH: Int, nKV: Int, hd: Int, scale: Float, segment: [Int32]?, window: Int) {
        self.T = T
        self.nH = nH
        self.nKV = nKV
        self.hd = hd
        self.scale = Double(scale)
        visible = (0..<T).map { t in
            (0..<T).map { j in
                guard j <= t, window <= 0 || t - j < window else { return false }
                guard let segment else { return true }
                return (j...t).allSatisfy { segment[$0] == segment[t] }
            }
        }
    }

    private func qi(_ t: Int, _ h: Int, _ d: Int) -> Int { t * nH * hd + h * hd + d }
    private func ki(_ t: Int, _ g: Int, _ d: Int) -> Int { t * nKV * hd + g * hd + d }

    /// Probabilities of query t, head h over all keys (0 where masked).
    private func probabilities(_ q: [Double], _ k: [Double], t: Int, h: Int) -> (p: [Double], lse: Double) {
        let g = h / (nH / nKV)
        var s = [Double](repeating: -.infinity, count: T)
        for j in 0..<T where visible[t][j] {
            var acc = 0.0
            for d in 0..<hd { acc += q[qi(t, h, d)] * k[ki(j, g, d)] }
            s[j] = scale * acc
        }
        let m = s.max()!
        var sum = 0.0
        for j in 0..<T where visible[t][j] { sum += exp(s[j] - m) }
        let lse = m + log(sum)
        return (s.map { $0 == -.infinity ? 0 : exp($0 - lse) }, lse)
    }

    func forward(_ q: [Double], _ k: [Double], _ v: [Double]) -> (out: [Double], lse: [Double]) {
        var out = [Double](repeating: 0, count: T * nH * hd), lse = [Double](repeating: 0, count: nH * T)
        for h in 0..<nH {
            let g = h / (nH / nKV)
            for t in 0..<T {
                let (p, l) = probabilities(q, k, t: t, h: h)
                lse[h * T + t] = l
                for j in 0..<T where p[j] != 0 {
                    for d in 0..<hd { out[qi(t, h, d)] += p[j] * v[ki(j, g, d)] }
                }
            }
        }
        return (out, lse)
    }

    /// Textbook gradients: dS = P * (dP - rowsum(P * dP)).
    func backward(_ q: [Double], _ k: [Double], _ v: [Double], _ dout: [Double])
        -> (dq: [Double], dk: [Double], dv: [Double])
    {
        var dq = [Double](repeating: 0, count: q.count)
        var dk = [Double](repeating: 0, count: k.count), dv = [Double](repeating: 0, count: v.count)
        for h in 0..<nH {
            let g = h / (nH / nKV)
            for t in 0..<T {
                let p = probabilities(q, k, t: t, h: h).p
                var dp = [Double](repeating: 0, count: T)
                var rowsum = 0.0
                for j in 0..<T where visible[t][j] {
                    for d in 0..<hd { dp[j] += dout[qi(t, h, d)] * v[ki(j, g, d)] }
                    rowsum += p[j] * dp[j]
                }
                for j in 0..<T where visible[t][j] {
                    let ds = p[j] * (dp[j] - rowsum) * scale
                    for d in 0..<hd {
                        dq[qi(t, h, d)] += ds * k[ki(j, g, d)]
                        dk[ki(j, g, d)] += ds * q[qi(t, h, d)]
                        dv[ki(j, g, d)] += p[j] * dout[qi(t, h, d)]
                    }
                }
            }
        }
        return (dq, dk, dv)
    }
}

final class GradientsAttentionTests: XCTestCase {
    private func check(
        T: Int, nH: Int, nKV: Int, hd: Int, runs: [Int]?, window: Int = 0, fdSamples: Int = 30, seed: UInt64,
        rng: inout GradRNG, scale fixedScale: Float? = nil
    ) {
        var segment: [Int32]?
        if let runs {
            XCTAssertEqual(runs.reduce(0, +), T)
            segment = runs.enumerated().flatMap { Array(repeating: Int32($0.offset * 7 + 3), count: $0.element) }
        }
        let tag = "T\(T) nH\(nH) nKV\(nKV) hd\(hd) runs \(runs.map { "\($0)" } ?? "none") window \(window)"
        let scale = fixedScale ?? Float(1 / Double(hd).squareRoot())
        let q = rng.floats(T * nH * hd, -2, 2), k = rng.floats(T * nKV * hd, -2, 2)
        let v = rng.floats(T * nKV * hd), dout = rng.floats(T * nH * hd)
        let ref = AttentionReference(T: T, nH: nH, nKV: nKV, hd: hd, scale: scale, segment: segment, window: window)
        let qd = doubles(q), kd = doubles(k), vd = doubles(v), doutd = doubles(dout)
        let (outRef, lseRef) = ref.forward(qd, kd, vd)
        let (dqRef, dkRef, dvRef) = ref.backward(qd, kd, vd, doutd)
        let qIdx = rng.sample(q.count, fdSamples), kIdx = rng.sample(k.count, fdSamples)
        let vIdx = rng.sample(v.count, fdSamples)
        let fdQ = centralDifference(qd, at: qIdx) { dot(doutd, ref.forward($0, kd, vd).out) }
        let fdK = centralDifference(kd, at: kIdx) { dot(doutd, ref.forward(qd, $0, vd).out) }
        let fdV = centralDifference(vd, at: vIdx) { dot(doutd, ref.forward(qd, kd, $0).out) }

        forEachKernelPath { path in
            let label = "\(path) \(tag)"
            var out = [Float](repeating: .nan, count: q.count), lse = [Float](repeating: .nan, count: nH * T)
            // Two head ranges, as two threads would split them.
            let hSplit = nH / 2
            var fwdScratch = [Float](repeating: .nan, count: Int(ltt_attention_forward_scratch_floats(Int64(hd))))
            withOptionalPointer(segment) { seg in
                ltt_attention_forward(q, k, v, &out, &lse, Int64(T), Int64(nH), Int64(nKV), Int64(hd), scale,
                                      0, Int64(hSplit), &fwdScratch, seg, Int64(window))
                ltt_attention_forward(q, k, v, &out, &lse, Int64(T), Int64(nH), Int64(nKV), Int64(hd), scale,
                                      Int64(hSplit), Int64(nH), &fwdScratch, seg, Int64(window))
            }
            assertClose(out, outRef, rel: 1e-5, "\(label) out", seed: seed)
            assertClose(lse, lseRef, rel: 1e-5, "\(label) lse", seed: seed)

            var dq = [Float](repeating: .nan, count: q.count)
            var dk = [Float](repeating: .nan, count: k.count), dv = [Float](repeating: .nan, count: v.count)
            let scratchCount = Int(ltt_attention_backward_scratch_floats(Int64(T), Int64(nH), Int64(nKV), Int64(hd)))
            XCTAssertGreaterThanOrEqual(scratchCount, T)
            var scratch = [Float](repeating: .nan, count: scratchCount)
            let kvSplit = max(1, nKV / 2)
            withOptionalPointer(segment) { seg in
                for (a, b) in [(0, kvSplit), (kvSplit, nKV)] where a < b {
                    ltt_attention_backward(q, k, v, out, dout, lse, &dq, &dk, &dv, Int64(T), Int64(nH), Int64(nKV),
                                           Int64(hd), scale, Int64(a), Int64(b), &scratch, seg, Int64(window))
                }
            }
            // dq and dk are sums that cancel (exactly to 0 with window 1, where each query sees only
            // itself): their rounding scales with dv's size, not their own.
            let dqFloor = max(rms(dqRef), 1e-2 * rms(dvRef)), dkFloor = max(rms(dkRef), 1e-2 * rms(dvRef))
            assertClose(dq, dqRef, rel: 1e-4, floor: dqFloor, "\(label) dq", seed: seed)
            assertClose(dk, dkRef, rel: 1e-4, floor: dkFloor, "\(label) dk", seed: seed)
            assertClose(dv, dvRef, rel: 1e-4, "\(label) dv", seed: seed)
            assertClose(qIdx.map { dq[$0] }, fdQ, rel: 1e-4, floor: dqFloor, "\(label) dq vs FD", seed: seed)
            assertClose(kIdx.map { dk[$0] }, fdK, rel: 1e-4, floor: dkFloor, "\(label) dk vs FD", seed: seed)
            assertClose(vIdx.map { dv[$0] }, fdV, rel: 1e-4, floor: rms(dvRef), "\(label) dv vs FD", seed: seed)
        }
    }

    func testGroupedQueryCausal() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        check(T: 33, nH: 6, nKV: 2, hd: 16, runs: nil, seed: seed, rng: &rng)
    }

    func testGroupedQueryWithSegments() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        let a = 1 + rng.int(14), b = 1 + rng.int(3)
        check(T: 33, nH: 3, nKV: 1, hd: 16, runs: [a, b, 33 - a - b], seed: seed, rng: &rng)
    }

    /// More keys than one 64-key block, a head size that is not a multiple of
    /// 16, and a segment that crosses the block boundary.
    func testLongerThanOneKeyBlock() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        // Few finite differences here: each one is two Float64 forward passes.
        check(T: 70, nH: 3, nKV: 1, hd: 20, runs: nil, fdSamples: 8, seed: seed, rng: &rng)
        check(T: 70, nH: 4, nKV: 2, hd: 20, runs: [5, 62, 3], fdSamples: 8, seed: seed, rng: &rng)
    }

    /// Past two full query tiles: key blocks wholly below a full tile take the
    /// forward pass's unmasked path.
    func testSeveralFullTiles() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        check(T: 131, nH: 3, nKV: 1, hd: 16, runs: nil, fdSamples: 4, seed: seed, rng: &rng)
        // Key blocks start at the segment start (2): one ends at t0 + 1 = 65 and
        // must still be masked for query 64.
        check(T: 131, nH: 3, nKV: 1, hd: 16, runs: [2, 129], fdSamples: 4, seed: seed, rng: &rng)
    }

    /// Gemma 3's local layers: a sliding window (t - j < window) across key blocks and query tiles,
    /// alone and with packed segments, at Gemma's scale query_pre_attn_scalar^-0.5 (256^-0.5 with
    /// hd 20 here, so the scale is not 1/sqrt(hd)). Window 1 sees only the diagonal.
    func testSlidingWindow() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        check(T: 33, nH: 4, nKV: 2, hd: 16, runs: nil, window: 5, seed: seed, rng: &rng)
        check(T: 33, nH: 2, nKV: 1, hd: 16, runs: nil, window: 1, fdSamples: 8, seed: seed, rng: &rng)
        let a = 3 + rng.int(20)
        check(T: 70, nH: 3, nKV: 1, hd: 20, runs: [a, 70 - a], window: 7 + rng.int(40), fdSamples: 8, seed: seed,
              rng: &rng, scale: 0.0625)
        check(T: 131, nH: 2, nKV: 1, hd: 16, runs: nil, window: 64, fdSamples: 4, seed: seed, rng: &rng)
        // A window longer than the sequence is no window.
        check(T: 20, nH: 2, nKV: 2, hd: 8, runs: [12, 8], window: 1000, fdSamples: 4, seed: seed, rng: &rng)
    }
}
