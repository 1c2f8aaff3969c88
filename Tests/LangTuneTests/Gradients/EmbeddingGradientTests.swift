import CLangTuneKernels
import XCTest

final class GradientsEmbeddingTests: XCTestCase {
    func testGatherAndScatterAdd() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        let vocab = 8, dim = 35, T = 12
        let table = rng.floats(vocab * dim), dout = rng.floats(T * dim), dtable0 = rng.floats(vocab * dim)
        var ids = (0..<T).map { _ in Int32(rng.int(vocab)) }
        ids[3] = ids[7]  // a repeated id accumulates twice
        ids[5] = -1  // out of range: zero row forward, skipped backward
        ids[9] = Int32(vocab)
        var outRef = [Double](repeating: 0, count: T * dim), dtRef = doubles(dtable0)
        for t in 0..<T where ids[t] >= 0 && Int(ids[t]) < vocab {
            for d in 0..<dim {
                outRef[t * dim + d] = Double(table[Int(ids[t]) * dim + d])
                dtRef[Int(ids[t]) * dim + d] += Double(dout[t * dim + d])
            }
        }
        forEachKernelPath { path in
            var out = [Float](repeating: .nan, count: T * dim)
            ltt_embedding_forward(table, ids, Int64(T), Int64(dim), Int64(vocab), &out)
            XCTAssertEqual(doubles(out), outRef, "\(path) gather, seed \(seed)")
            var dtable = dtable0
            ltt_embedding_backward(dout, ids, Int64(T), Int64(dim), Int64(vocab), &dtable)
            assertClose(dtable, dtRef, rel: 1e-6, "\(path) scatter-add", seed: seed)
        }
    }
}
