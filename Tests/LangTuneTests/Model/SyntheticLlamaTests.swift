import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// Models built from seeded random weights (what `bench memory` trains) and 16-bit weights used in
/// their stored form: the same values for any thread count, products that match float64.
final class SyntheticLlamaTests: XCTestCase {
    let tiny = LlamaConfig(architecture: "llama", hiddenSize: 128, intermediateSize: 192, numLayers: 2, numHeads: 4,
                           numKVHeads: 2, vocabSize: 300, rmsNormEps: 1e-5, ropeTheta: 10_000,
                           maxPositionEmbeddings: 256, tieWordEmbeddings: false)

    func testWeightsDependOnTheSeedOnly() {
        let a = LlamaModel.synthetic(config: tiny, projections: .bf16, seed: 5, backend: CPUBackend(threads: Threads(1)))
        let b = LlamaModel.synthetic(config: tiny, projections: .bf16, seed: 5, backend: CPUBackend(threads: Threads(3)))
        let c = LlamaModel.synthetic(config: tiny, projections: .bf16, seed: 6, backend: CPUBackend(threads: Threads(1)))
        XCTAssertEqual(a.layers[1].gate.floatValues(), b.layers[1].gate.floatValues())
        XCTAssertEqual(a.lmHead.floatValues(), b.lmHead.floatValues())
        XCTAssertNotEqual(a.layers[1].gate.floatValues(), c.layers[1].gate.floatValues())
        let v = a.layers[0].down.floatValues()
        let bound = 0.02 * Float(3).squareRoot()
        XCTAssertLessThanOrEqual(v.map(abs).max()!, bound * 1.01)
        let std = (v.reduce(0.0) { $0 + Double($1 * $1) } / Double(v.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.002)
    }

    /// A bf16 weight kept as stored: tiled products and row lookups against float64 on its values.
    func testStoredBF16ProductsMatchFloat64() {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF)
        let out = 700, inF = 1000, rows = 3
        let m = LlamaModel.synthetic(config: LlamaConfig(architecture: "llama", hiddenSize: inF, intermediateSize: 64, numLayers: 1,
                                                          numHeads: 8, numKVHeads: 8, vocabSize: out, rmsNormEps: 1e-5,
                                                          ropeTheta: 10_000, maxPositionEmbeddings: 64, tieWordEmbeddings: true),
                                     projections: .bf16, seed: rng.next())
        let w = m.lmHead
        XCTAssertNil(w.dense)
        XCTAssertEqual(w.blocks?.dtype, .bf16)
        let values = w.floatValues()
        let x = (0..<(rows * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        var y = [Float](repeating: 0, count: rows * out)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { m.backend.linear(w, x: xp.baseAddress!, rows: rows, y: $0.baseAddress!) } }
        var worst = 0.0, scale = 0.0
        for r in 0..<rows { for j in 0..<out {
            var s = 0.0
            for k in 0..<inF { s += Double(x[r * inF + k]) * Double(values[j * inF + k]) }
            worst = max(worst, abs(Double(y[r * out + j]) - s))
            scale = max(scale, abs(s))
        } }
        XCTAssertLessThan(worst / scale, 1e-5)
        var row = [Float](repeating: 0, count: inF)
        row.withUnsafeMutableBufferPointer { w.copyRow(17, into: $0.baseAddress!) }
        XCTAssertEqual(row, Array(values[(17 * inF)..<(18 * inF)]))
    }

    /// NF4 and bf16 bases drawn from the same seed give nearly the same logits, and QLoRA trains on them.
    func testSyntheticQLoRATrains() throws {
        let nf4 = LlamaModel.synthetic(config: tiny, projections: .nf4, seed: 1)
        let bf16 = LlamaModel.synthetic(config: tiny, projections: .bf16, seed: 1)
        XCTAssertNotNil(nf4.layers[0].q.nf4)
        let ids = [1, 5, 9, 200, 7, 3]
        let a = nf4.forward(ids, cache: KVCache(config: tiny, capacity: ids.count), logits: .all)
        let b = bf16.forward(ids, cache: KVCache(config: tiny, capacity: ids.count), logits: .all)
        let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let cosine = dot / (a.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot() * b.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot())
        XCTAssertGreaterThan(cosine, 0.98)

        var opts = TrainingOptions()
        opts.lora = LoRAConfig(rank: 4, alpha: 8)
        opts.optimizer.learningRate = 1e-2
        opts.steps = 30
        opts.schedule = .constant
        opts.checkpointActivations = true
        let example = TokenizedExample(ids: (0..<24).map { Int32(($0 * 37) % 300) }, labels: (0..<24).map { Int32(($0 * 37) % 300) }, origin: "t")
        let adapter = try LoRAAdapter(config: opts.lora, model: tiny, seed: 0)
        let trainer = Trainer(model: nf4, adapter: adapter, train: [example], validation: [], options: opts,
                              output: FileManager.default.temporaryDirectory.appendingPathComponent("unused"))
        let first = try trainer.step([[example]]).loss
        var last = first
        for _ in 1..<30 { last = try trainer.step([[example]]).loss }
        XCTAssertEqual(first, log(300), accuracy: 0.1, "random weights predict uniformly")
        XCTAssertLessThan(last, first * 0.9, "the adapter learns the one sequence")
    }

    /// A prompt on an empty cache runs the blocked (flash) attention kernel; a continuation runs the
    /// row-at-a-time kernel over the cache. Same logits either way (summation order only: 1e-5), and
    /// the cache rows the prompt left behind serve the continuation.
    func testPromptAttentionEqualsIncrementalDecoding() {
        let m = LlamaModel.synthetic(config: tiny, projections: .f32, seed: 3, backend: CPUBackend(threads: Threads(2)))
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF)
        let ids = (0..<150).map { _ in Int(rng.next() % UInt64(tiny.vocabSize)) }
        let V = tiny.vocabSize
        let whole = m.forward(ids, cache: KVCache(config: tiny, capacity: ids.count), logits: .all)
        let cache = KVCache(config: tiny, capacity: 4)
        var pieces = m.forward(Array(ids[0..<100]), cache: cache, logits: .all)  // flash (p0 = 0)
        pieces += m.forward(Array(ids[100..<120]), cache: cache, logits: .all)  // row kernel over 100 cached rows
        for i in 120..<ids.count { pieces += m.forward([ids[i]], cache: cache, logits: .all) }
        XCTAssertEqual(whole.count, ids.count * V)
        XCTAssertEqual(pieces.count, whole.count)
        let scale = whole.map { abs(Double($0)) }.max()!
        let worst = zip(whole, pieces).map { abs(Double($0) - Double($1)) }.max()!
        XCTAssertLessThan(worst / scale, 1e-5)
        XCTAssertGreaterThan(scale, 0)
    }

    /// `--dtype bf16` keeps the KV cache in bf16: the attention over it equals float32 attention over
    /// the same bf16-rounded keys and values (1e-6), the cache takes half the bytes, and decoding
    /// from it stays within bf16 rounding of the float32 model's logits (2e-2 of the largest logit:
    /// K, V and the products' inputs are all rounded to 8-bit mantissas).
    func testBF16CacheAttentionAndDecoding() throws {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF)
        let T = 5, p0 = 40, nH = 4, nKV = 2, hd = 32, w = nKV * hd, n = p0 + T
        let q = (0..<(T * nH * hd)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let k16 = (0..<(n * w)).map { _ in BFloat16Bits.fromFloat(Float(rng.nextDouble() * 2 - 1)) }
        let v16 = (0..<(n * w)).map { _ in BFloat16Bits.fromFloat(Float(rng.nextDouble() * 2 - 1)) }
        let k32 = k16.map(BFloat16Bits.toFloat), v32 = v16.map(BFloat16Bits.toFloat)
        var outs: [[Float]] = []
        CPUTier.forEachRunnable { simd in
            var a = [Float](repeating: 0, count: T * nH * hd), b = a, scratch = [Float](repeating: 0, count: n)
            lt_attention_causal_bf16(q, k16, v16, &a, Int64(T), Int64(p0), Int64(nH), Int64(nKV), Int64(hd), Int64(w), 0.17, 0, Int64(nH), &scratch)
            lt_attention_causal(q, k32, v32, &b, Int64(T), Int64(p0), Int64(nH), Int64(nKV), Int64(hd), Int64(w), 0.17, 0, Int64(nH), &scratch)
            XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-6, "simd \(simd)")
            XCTAssertGreaterThan(a.map(abs).max()!, 0)
            outs.append(a)
        }
        for o in outs.dropFirst() { XCTAssertLessThan(zip(outs[0], o).map { abs($0 - $1) }.max()!, 1e-6, "SIMD tiers against portable") }

        let f32 = LlamaModel.synthetic(config: tiny, projections: .f32, seed: 4, backend: CPUBackend(threads: Threads(2)))
        let bf = LlamaModel.synthetic(config: tiny, projections: .f32, seed: 4, backend: CPUBackend(threads: Threads(2), bf16: true))
        let ids = (0..<40).map { _ in Int(rng.next() % UInt64(tiny.vocabSize)) }
        var logits: [[Float]] = []
        for m in [f32, bf] {
            let cache = KVCache(config: tiny, capacity: 4)
            var out = m.forward(Array(ids[0..<20]), cache: cache, logits: .all)
            for i in 20..<ids.count { out += m.forward([ids[i]], cache: cache, logits: .all) }
            XCTAssertEqual(cache.storesBF16, m.backend.usesReducedPrecisionDecoding)
            XCTAssertEqual(cache.byteCount, 2 * tiny.numLayers * cache.capacity * w * (m.backend.usesReducedPrecisionDecoding ? 2 : 4))
            logits.append(out)
        }
        let scale = logits[0].map { abs(Double($0)) }.max()!
        let worst = zip(logits[0], logits[1]).map { abs(Double($0) - Double($1)) }.max()!
        XCTAssertLessThan(worst / scale, 2e-2)
        XCTAssertGreaterThan(worst, 0, "the bf16 model should round somewhere")
    }
}
