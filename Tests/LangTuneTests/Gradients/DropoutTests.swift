import CLangTuneKernels
import XCTest

final class GradientsDropoutTests: XCTestCase {
    /// The documented mask: splitmix64 output number (offset + i) of the stream
    /// seeded by `seed`, top 32 bits >= round(p * 2^32).
    private func keeps(_ n: Int, p: Float, seed: UInt64, offset: UInt64) -> [Bool] {
        let thr = UInt64((Double(p) * 4_294_967_296.0).rounded())
        return (0..<n).map { i in
            let c = offset &+ UInt64(i) &+ 1
            return GradRNG.mix(seed &+ c &* 0x9E37_79B9_7F4A_7C15) >> 32 >= thr
        }
    }

    func testMaskScaleReproducibilityAndBackward() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        let n = 1003, p: Float = 0.3
        let dropSeed = rng.next(), offset = rng.next() >> 8
        let x = rng.floats(n), dout = rng.floats(n)
        let keep = keeps(n, p: p, seed: dropSeed, offset: offset)
        let s = Float(1.0 / (1.0 - Double(p)))
        let outRef = (0..<n).map { keep[$0] ? x[$0] * s : 0 }
        let dxRef = (0..<n).map { keep[$0] ? dout[$0] * s : 0 }
        let kept = keep.filter { $0 }.count
        // Binomial(1003, 0.7): sd about 14.5; six sd either way.
        XCTAssertLessThan(abs(Double(kept) - 0.7 * Double(n)), 87, "seed \(seed)")

        forEachKernelPath { path in
            var out = [Float](repeating: .nan, count: n), mask = [UInt8](repeating: 0xAA, count: (n + 7) / 8)
            ltt_dropout_forward(x, &out, &mask, Int64(n), p, dropSeed, offset)
            XCTAssertEqual(out, outRef, "\(path) forward, seed \(seed)")
            let maskMismatches = (0..<n).filter { ((mask[$0 / 8] >> ($0 % 8)) & 1 == 1) != keep[$0] }
            XCTAssertEqual(maskMismatches.count, 0, "\(path) mask bits differ at \(maskMismatches.prefix(5)), seed \(seed)")
            var dx = [Float](repeating: .nan, count: n)
            ltt_dropout_backward(dout, &dx, Int64(n), p, dropSeed, offset)
            XCTAssertEqual(dx, dxRef, "\(path) backward, seed \(seed)")
            // Split in two calls by offset: same mask.
            var split = [Float](repeating: .nan, count: n)
            let cut = 517
            split.withUnsafeMutableBufferPointer { sp in
                x.withUnsafeBufferPointer { xp in
                    ltt_dropout_forward(xp.baseAddress, sp.baseAddress, nil, Int64(cut), p, dropSeed, offset)
                    ltt_dropout_forward(xp.baseAddress! + cut, sp.baseAddress! + cut, nil, Int64(n - cut), p,
                                        dropSeed, offset + UInt64(cut))
                }
            }
            XCTAssertEqual(split, outRef, "\(path) split by offset, seed \(seed)")
            // p = 0 copies, p = 1 zeroes.
            var same = [Float](repeating: .nan, count: n)
            ltt_dropout_forward(x, &same, nil, Int64(n), 0, dropSeed, offset)
            XCTAssertEqual(same, x, "\(path)")
            ltt_dropout_forward(x, &same, nil, Int64(n), 1, dropSeed, offset)
            XCTAssertTrue(same.allSatisfy { $0 == 0 }, "\(path)")
        }
    }
}
