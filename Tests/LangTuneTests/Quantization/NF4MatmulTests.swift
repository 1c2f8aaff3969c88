import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// QLoRA's frozen products: an NF4 weight used through tiles gives what the float32 matrix of
/// its dequantized values gives, forward (y = x·Wᵀ) and backward (dx = dy·W), on fresh random
/// inputs against a float64 reference.
final class NF4MatmulTests: XCTestCase {
    func reference(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, transB: Bool) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(a[i * k + p]) * Double(transB ? b[j * k + p] : b[p * n + j]) }
            out[i * n + j] = s
        } }
        return out
    }

    func testForwardAndBackwardMatchTheDequantizedMatrix() {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        // Shapes with several tiles (out > tile rows), an in-width that is not a multiple of 64, one row.
        for (rows, out, inF) in [(5, 1100, 576), (1, 70, 96), (3, 40, 4000)] {
            let w = (0..<(out * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) * 0.05 }
            let q = NF4Tensor.quantize(w, shape: [out, inF])
            let deq = q.dequantize()
            let lw = LinearWeight(nf4: q)
            let threads = Threads(2)
            let x = (0..<(rows * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) }
            var y = [Float](repeating: 0, count: rows * out)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                CPUBackend(threads: threads).linear(lw, x: xp.baseAddress!, rows: rows, y: yp.baseAddress!)
            } }
            let yRef = reference(x, deq, m: rows, k: inF, n: out, transB: true)
            let scale = yRef.map(abs).max()!
            XCTAssertLessThan(zip(y, yRef).map { abs(Double($0) - $1) }.max()! / scale, 1e-5, "forward \(rows)x\(out)x\(inF)")

            let dy = (0..<(rows * out)).map { _ in Float(rng.nextDouble() * 2 - 1) }
            let base = (0..<(rows * inF)).map { _ in Float(rng.nextDouble()) }
            for accumulate in [false, true] {
                var dx = base
                dy.withUnsafeBufferPointer { dp in dx.withUnsafeMutableBufferPointer { xp in
                    lw.tiledBackwardInput(dy: dp.baseAddress!, rows: rows, dx: xp.baseAddress!, accumulate: accumulate, threads: threads)
                } }
                var dxRef = reference(dy, deq, m: rows, k: out, n: inF, transB: false)
                if accumulate { for i in dxRef.indices { dxRef[i] += Double(base[i]) } }
                let s = dxRef.map(abs).max()!
                XCTAssertLessThan(zip(dx, dxRef).map { abs(Double($0) - $1) }.max()! / s, 1e-5, "backward \(rows)x\(out)x\(inF) accumulate \(accumulate)")
            }
        }
    }

    /// QLoRA on the real model: the NF4 base stays close to the float base (the same prompt's
    /// logits) and holds 4-bit codes, not float32 copies.
    func testQLoRAModelOnSmolLM2() throws {
        let path = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let full = try LanguageModel(path)
        let q = try LanguageModel(path, quantization: FrozenQuantization())
        let ids = try full.promptIds("Türkiye'nin başkenti neresidir?", chat: true)
        let a = full.model.forward(ids, cache: KVCache(config: full.model.config, capacity: ids.count), logits: .last)
        let b = q.model.forward(ids, cache: KVCache(config: q.model.config, capacity: ids.count), logits: .last)
        let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot(), nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let cosine = dot / (na * nb)
        XCTAssertGreaterThan(cosine, 0.99, "NF4 base logits stay close to the float base's (measured 0.9970)")
        XCTAssertLessThan(cosine, 0.999999, "NF4 changes the weights")
        let layer = q.model.layers[0]
        XCTAssertNil(layer.q.dense)
        XCTAssertTrue(layer.down.nf4?.doubleQuantized ?? false)
        XCTAssertNotNil(q.model.embedding.dense, "embeddings stay float")
    }

    /// `--qlora-base source`: the GGUF's own Q4_1/Q8_0 blocks as the frozen weights give exactly the
    /// float model (the same values), with no float32 copy of the projections.
    func testSourceBlocksBaseEqualsTheFloatModel() throws {
        let path = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let full = try LanguageModel(path)
        let kept = try LanguageModel(path, quantization: FrozenQuantization(keepSourceBlocks: true))
        XCTAssertNil(kept.model.layers[0].q.dense)
        XCTAssertNotNil(kept.model.layers[0].q.blocks)
        let ids = try full.promptIds("中国的首都是哪里？", chat: true)
        let a = full.model.forward(ids, cache: KVCache(config: full.model.config, capacity: ids.count), logits: .last)
        let b = kept.model.forward(ids, cache: KVCache(config: kept.model.config, capacity: ids.count), logits: .last)
        let scale = a.map(abs).max()!
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()! / scale, 1e-5)
        // Backward through the kept blocks: dx = dy · W against the float matrix.
        let w = kept.model.layers[2].down, dense = full.model.layers[2].down
        var rng = SplitMix64(seed: 99)
        let rows = 3
        let dy = (0..<(rows * w.outFeatures)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        var dx = [Float](repeating: 0, count: rows * w.inFeatures), ref = dx
        dy.withUnsafeBufferPointer { d in
            dx.withUnsafeMutableBufferPointer { w.tiledBackwardInput(dy: d.baseAddress!, rows: rows, dx: $0.baseAddress!, accumulate: false, threads: Threads(2)) }
            ref.withUnsafeMutableBufferPointer {
                lt_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), Int64(rows), Int64(w.inFeatures), Int64(w.outFeatures), 1,
                         d.baseAddress!, Int64(w.outFeatures), dense.dense!, Int64(w.inFeatures), 0, $0.baseAddress!, Int64(w.inFeatures))
            }
        }
        let s = ref.map(abs).max()!
        XCTAssertLessThan(zip(dx, ref).map { abs($0 - $1) }.max()! / s, 1e-5)
    }
}
