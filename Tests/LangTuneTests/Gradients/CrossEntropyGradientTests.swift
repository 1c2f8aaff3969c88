import CLangTuneKernels
import XCTest

final class GradientsCrossEntropyTests: XCTestCase {
    /// Per-row loss and (softmax - onehot) * scale in Float64; ignored rows: 0.
    private func reference(_ x: [Double], targets: [Int32], rows: Int, vocab: Int, scale: Double)
        -> (loss: [Double], grad: [Double])
    {
        var loss = [Double](repeating: 0, count: rows), grad = [Double](repeating: 0, count: rows * vocab)
        for r in 0..<rows {
            let t = Int(targets[r])
            guard t >= 0 && t < vocab else { continue }
            let row = x[(r * vocab)..<((r + 1) * vocab)]
            let m = row.max()!
            let lse = m + log(row.reduce(0.0) { $0 + exp($1 - m) })
            loss[r] = lse - x[r * vocab + t]
            for j in 0..<vocab { grad[r * vocab + j] = exp(x[r * vocab + j] - lse) * scale }
            grad[r * vocab + t] -= scale
        }
        return (loss, grad)
    }

    private func check(rows: Int, vocab: Int, chunks: [Int], ignored: Set<Int>, seed: UInt64, rng: inout GradRNG) {
        var logits = rng.floats(rows * vocab, -8, 8)
        for j in 0..<vocab { logits[j] += 100 }  // row 0: exp overflows float32 without the max shift
        var targets = (0..<rows).map { _ in Int32(rng.int(vocab)) }
        for r in ignored { targets[r] = r % 2 == 0 ? -100 : Int32(vocab) }
        let valid = rows - ignored.count
        let scale = Float(1) / Float(max(valid, 1))
        let xd = doubles(logits)
        let (lossRef, gradRef) = reference(xd, targets: targets, rows: rows, vocab: vocab, scale: Double(scale))
        let sumRef = lossRef.reduce(0, +)
        let idx = rng.sample(rows * vocab, 30) + targets.enumerated().compactMap {
            $0.element >= 0 && Int($0.element) < vocab ? $0.offset * vocab + Int($0.element) : nil
        }
        let fd = centralDifference(xd, at: idx) {
            self.reference($0, targets: targets, rows: rows, vocab: vocab, scale: 1).loss.reduce(0, +) * Double(scale)
        }
        let tag = "rows\(rows) vocab\(vocab)"
        forEachKernelPath { path in
            var d = logits
            var lossRows = [Double](repeating: .nan, count: rows)
            var total = 0.0
            d.withUnsafeMutableBufferPointer { dp in
                lossRows.withUnsafeMutableBufferPointer { lp in
                    var r0 = 0
                    for c in chunks {
                        total += targets.withUnsafeBufferPointer { tp in
                            ltt_cross_entropy_forward_backward(
                                dp.baseAddress! + r0 * vocab, tp.baseAddress! + r0, Int64(c), Int64(vocab), scale,
                                lp.baseAddress! + r0)
                        }
                        r0 += c
                    }
                    XCTAssertEqual(r0, rows)
                }
            }
            XCTAssertEqual(total, sumRef, accuracy: 1e-5 * abs(sumRef), "\(path) \(tag) loss sum, seed \(seed)")
            assertClose(lossRows.map { Float($0) }, lossRef, rel: 1e-5, "\(path) \(tag) row losses", seed: seed)
            assertClose(d, gradRef, rel: 1e-4, "\(path) \(tag) dlogits", seed: seed)
            assertClose(idx.map { d[$0] }, fd, rel: 1e-4, floor: rms(gradRef), "\(path) \(tag) dlogits vs FD", seed: seed)
            for r in ignored {
                XCTAssertEqual(lossRows[r], 0, "\(path) seed \(seed)")
                XCTAssertTrue(d[(r * vocab)..<((r + 1) * vocab)].allSatisfy { $0 == 0 }, "\(path) ignored row \(r)")
            }
            // Without per-row losses.
            var d2 = logits
            let total2 = ltt_cross_entropy_forward_backward(&d2, targets, Int64(rows), Int64(vocab), scale, nil)
            XCTAssertEqual(total2, sumRef, accuracy: 1e-5 * abs(sumRef), "\(path) \(tag) seed \(seed)")
        }
    }

    func testSmallVocabularyWithIgnoredRows() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        check(rows: 7, vocab: 1000, chunks: [3, 4], ignored: [2, 5], seed: seed, rng: &rng)
    }

    /// Rows wider than the kernel's 4096-wide exp-sum chunk.
    func testWideRows() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        check(rows: 3, vocab: 9001, chunks: [1, 2], ignored: [1], seed: seed, rng: &rng)
    }
}
