import CLangTuneKernels
import XCTest
@testable import LangTune

/// The LoRA training graph on a tiny Gemma 3 against an independent Float64 implementation written
/// from transformers' Gemma3 modules: forward loss, the inference model's loss, and LoRA gradients
/// by central finite differences. The config exercises every departure from Llama: a sliding window
/// shorter than the sequences, two RoPE bases, q/k norms, post-norms, GeGLU, scaled embeddings, a
/// head size apart from hidden / heads and an attention scalar apart from the head size.
final class Gemma3GraphGradientTests: XCTestCase {
    typealias Tiny = LoRAGraphGradientTests.Tiny
    typealias LoRAValues = LoRAGraphGradientTests.LoRAValues

    static func makeTiny(seed: UInt64) -> Tiny {
        let g = Gemma3Options(slidingWindow: 3, slidingWindowPattern: 2, localRopeTheta: 100, queryPreAttnScalar: 5)
        let c = LlamaConfig(architecture: "gemma3", hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4,
                            numKVHeads: 2, headDim: 6, vocabSize: 40, rmsNormEps: 1e-6, ropeTheta: 10000,
                            maxPositionEmbeddings: 64, tieWordEmbeddings: true, gemma3: g)
        var w = LoRAGraphGradientTests.RandomWeights(rng: SplitMix64(seed: seed))
        w.add("model.embed_tokens.weight", [40, 16], scale: 0.5)
        for l in 0..<2 {
            let p = "model.layers.\(l)."
            // Norm weights are the multipliers (a GGUF's stored 1 + w).
            for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] {
                w.add(p + n + ".weight", [16], center: 1, scale: 0.3)
            }
            w.add(p + "self_attn.q_norm.weight", [6], center: 1, scale: 0.3)
            w.add(p + "self_attn.k_norm.weight", [6], center: 1, scale: 0.3)
            w.addProjections(p, c)
        }
        w.add("model.norm.weight", [16], center: 1, scale: 0.2)
        // The head is the embedding (tied, as Gemma's).
        return Tiny(config: c, weights: w.weights, shapes: w.shapes)
    }

    /// Float64 reference of Gemma3ForCausalLM: loss = scale · Σ CE(target) over positions.
    static func reference(_ t: Tiny, lora: LoRAValues, loraScale: Double, batch: PackedBatch, scale: Double) -> Double {
        let c = t.config, g = c.gemma3!, H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKVHeads
        func W(_ n: String) -> [Double] { t.weights[n]! }
        func linear(_ x: [[Double]], _ name: String, _ module: String) -> [[Double]] {
            LoRAGraphGradientTests.linear(t, x, name, module, lora: lora, loraScale: loraScale)
        }
        func rms(_ r: [Double], _ w: [Double]) -> [Double] {
            let ms = r.reduce(0) { $0 + $1 * $1 } / Double(r.count)
            return r.enumerated().map { w[$0.offset] * $0.element / (ms + Double(c.rmsNormEps)).squareRoot() }
        }
        func rms(_ x: [[Double]], _ name: String) -> [[Double]] { x.map { rms($0, W(name)) } }
        /// Per-head RMSNorm, then RoPE with `theta`, of one position's heads.
        func normRope(_ x: [Double], heads: Int, norm: String, theta: Double, pos: Int) -> [Double] {
            var y: [Double] = []
            for h in 0..<heads { y += rms(Array(x[(h * hd)..<(h * hd + hd)]), W(norm)) }
            for h in 0..<heads { for i in 0..<(hd / 2) {
                let f = Double(Float(1.0 / pow(Float(theta), Float(2 * i) / Float(hd))))
                let ang = Double(Float(pos) * Float(f))
                let a = y[h * hd + i], b = y[h * hd + i + hd / 2]
                y[h * hd + i] = a * cos(ang) - b * sin(ang)
                y[h * hd + i + hd / 2] = b * cos(ang) + a * sin(ang)
            } }
            return y
        }
        func geluTanh(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
        var loss = 0.0
        for span in batch.spans {
            let ids = batch.ids[span.start..<(span.start + span.count)].map { Int($0) }
            let embedScale = Double(Float(Double(H).squareRoot()))
            var x = ids.map { id in W("model.embed_tokens.weight")[(id * H)..<(id * H + H)].map { $0 * embedScale } }
            for l in 0..<c.numLayers {
                let p = "model.layers.\(l).", local = g.isLocal(layer: l)
                let theta = local ? g.localRopeTheta : c.ropeTheta
                let h1 = rms(x, p + "input_layernorm.weight")
                let q = linear(h1, p + "self_attn.q_proj.weight", "\(l).q_proj").enumerated().map {
                    normRope($0.element, heads: nH, norm: p + "self_attn.q_norm.weight", theta: theta, pos: $0.offset)
                }
                let k = linear(h1, p + "self_attn.k_proj.weight", "\(l).k_proj").enumerated().map {
                    normRope($0.element, heads: nKV, norm: p + "self_attn.k_norm.weight", theta: theta, pos: $0.offset)
                }
                let v = linear(h1, p + "self_attn.v_proj.weight", "\(l).v_proj")
                var att = [[Double]](repeating: [Double](repeating: 0, count: nH * hd), count: ids.count)
                for h in 0..<nH {
                    let kh = h / (nH / nKV)
                    for i in 0..<ids.count {
                        // transformers' sliding window: key j visible when i - j < window.
                        let keys = Array((local ? max(0, i - g.slidingWindow + 1) : 0)...i)
                        var sc = keys.map { j in
                            (0..<hd).reduce(0.0) { $0 + q[i][h * hd + $1] * k[j][kh * hd + $1] } / g.queryPreAttnScalar.squareRoot()
                        }
                        let mx = sc.max()!
                        sc = sc.map { exp($0 - mx) }
                        let z = sc.reduce(0, +)
                        for (n, j) in keys.enumerated() { for d in 0..<hd { att[i][h * hd + d] += sc[n] / z * v[j][kh * hd + d] } }
                    }
                }
                let o = rms(linear(att, p + "self_attn.o_proj.weight", "\(l).o_proj"), p + "post_attention_layernorm.weight")
                for i in 0..<x.count { for d in 0..<H { x[i][d] += o[i][d] } }
                let h2 = rms(x, p + "pre_feedforward_layernorm.weight")
                let gate = linear(h2, p + "mlp.gate_proj.weight", "\(l).gate_proj")
                let up = linear(h2, p + "mlp.up_proj.weight", "\(l).up_proj")
                let a = zip(gate, up).map { zip($0, $1).map { geluTanh($0) * $1 } }
                let d = rms(linear(a, p + "mlp.down_proj.weight", "\(l).down_proj"), p + "post_feedforward_layernorm.weight")
                for i in 0..<x.count { for e in 0..<H { x[i][e] += d[i][e] } }
            }
            let logits = linear(rms(x, "model.norm.weight"), "model.embed_tokens.weight", "head")
            loss += LoRAGraphGradientTests.crossEntropy(logits, targets: batch.targets[span.start..<(span.start + span.count)],
                                                        scale: scale)
        }
        return loss
    }

    /// Sequences of 7 and 5 tokens: both longer than the window of 3.
    static let batch = PackedBatch([
        (ids: [3, 7, 11, 2, 9, 14, 6], labels: [-100, -100, 11, 2, 9, 14, 6]),
        (ids: [5, 1, 30, 22, 8], labels: [-100, 1, 30, -100, 8]),
    ])

    static func adapter(_ config: LlamaConfig, seed: UInt64, dropout: Double = 0) throws -> LoRAAdapter {
        let adapter = try LoRAAdapter(config: LoRAConfig(rank: 2, alpha: 3, dropout: dropout), model: config, seed: seed)
        // Nonzero B so that gradients reach A; drawn in target order (a dictionary's order changes from run to run).
        var rng = SplitMix64(seed: seed &+ 2)
        for l in adapter.layers {
            for t in LoRATarget.allCases { if let w = l[t] { for i in 0..<w.b.count { w.b.pointer[i] = Float(rng.nextDouble() - 0.5) } } }
        }
        return adapter
    }

    func testLossAndLoRAGradientsMatchFloat64FiniteDifferences() throws {
        let seed = UInt64(Date().timeIntervalSince1970)
        let tiny = Self.makeTiny(seed: seed)
        let model = try LlamaModel(files: LoRAGraphGradientTests.files(tiny), backend: CPUBackend(threads: Threads(2)))
        let adapter = try Self.adapter(tiny.config, seed: seed &+ 1)
        let batch = Self.batch, lossScale = 1 / Float(batch.targetCount)
        let grads = LoRAGradients(like: adapter)
        let loss = LoRAGraph(model: model, adapter: adapter).run(batch, lossScale: lossScale, grads: grads) * Double(lossScale)

        let base = LoRAGraphGradientTests.values(of: adapter)
        let loraScale = Double(adapter.config.scale)
        func ref(_ lora: LoRAValues) -> Double { Self.reference(tiny, lora: lora, loraScale: loraScale, batch: batch, scale: Double(lossScale)) }
        let refLoss = ref(base)
        XCTAssertEqual(loss, refLoss, accuracy: 1e-5 * abs(refLoss), "forward loss (seed \(seed))")

        let h = 1e-5
        var checked = 0, worst = 0.0
        for l in 0..<2 {
            for t in LoRATarget.allCases {
                let key = "\(l).\(t.rawValue)"
                for which in ["a", "b"] {
                    let analytic = which == "a" ? grads.a[l][t]! : grads.b[l][t]!
                    var maxErr = 0.0, maxG = 0.0
                    for idx in stride(from: 0, to: analytic.count, by: max(1, analytic.count / 8)) {
                        var plus = base, minus = base
                        if which == "a" { plus[key]!.a[idx] += h; minus[key]!.a[idx] -= h } else { plus[key]!.b[idx] += h; minus[key]!.b[idx] -= h }
                        let fd = (ref(plus) - ref(minus)) / (2 * h)
                        maxErr = max(maxErr, abs(fd - Double(analytic.pointer[idx])))
                        maxG = max(maxG, abs(fd))
                        checked += 1
                    }
                    XCTAssertGreaterThan(maxG, 1e-6, "\(key).lora_\(which.uppercased()) has a gradient to check")
                    XCTAssertLessThanOrEqual(maxErr, 1e-3 * max(maxG, 1e-3), "d loss / d \(key).lora_\(which.uppercased()) (seed \(seed))")
                    worst = max(worst, maxErr / max(maxG, 1e-3))
                }
            }
        }
        XCTAssertGreaterThan(checked, 200)
        print("gemma3 graph: \(checked) LoRA gradient entries, worst error \(worst) of the largest gradient (seed \(seed))")
    }

    /// The fixture tells Gemma's options apart: a graph that ignored the window, used one RoPE base for
    /// every layer or scaled attention by the head size would miss the reference loss by ten times the
    /// forward tolerance above (1e-5) or more (measured: 3e-4 for the RoPE base, the smallest).
    func testReferenceTellsEachOptionApart() throws {
        let tiny = Self.makeTiny(seed: 41)
        let adapter = try Self.adapter(tiny.config, seed: 42)
        let lora = LoRAGraphGradientTests.values(of: adapter)
        let ref = Self.reference(tiny, lora: lora, loraScale: Double(adapter.config.scale), batch: Self.batch, scale: 1)
        let changes: [(String, (inout Gemma3Options) -> Void)] = [
            ("no window", { $0.slidingWindow = 64 }), ("one RoPE base", { $0.localRopeTheta = 10000 }),
            ("scale by head size", { $0.queryPreAttnScalar = 6 }), ("every layer global", { $0.slidingWindowPattern = 1 }),
        ]
        for (name, change) in changes {
            var config = tiny.config
            change(&config.gemma3!)
            let changed = Tiny(config: config, weights: tiny.weights, shapes: tiny.shapes)
            let model = try LlamaModel(files: LoRAGraphGradientTests.files(changed))
            let loss = LoRAGraph(model: model, adapter: adapter).run(Self.batch, lossScale: 1, grads: nil)
            XCTAssertGreaterThan(abs(loss - ref), 1e-4 * abs(ref), name)
        }
    }

    /// The graph's loss is the loss of the inference model's logits (LlamaModel.forward, the adapter applied).
    func testGraphLossEqualsInferenceLoss() throws {
        let tiny = Self.makeTiny(seed: 21)
        let model = try LlamaModel(files: LoRAGraphGradientTests.files(tiny))
        let adapter = try Self.adapter(tiny.config, seed: 22)
        let graphLoss = LoRAGraph(model: model, adapter: adapter).run(Self.batch, lossScale: 1, grads: nil)
        model.adapter = adapter
        let inference = Self.inferenceLoss(model, Self.batch)
        XCTAssertEqual(graphLoss, inference, accuracy: 1e-5 * abs(inference))
    }

    /// Σ -log p(target) from `model.forward`'s logits, each example on a fresh cache.
    static func inferenceLoss(_ model: LlamaModel, _ batch: PackedBatch) -> Double {
        var loss = 0.0
        for span in batch.spans {
            let ids = batch.ids[span.start..<(span.start + span.count)].map { Int($0) }
            let logits = model.forward(ids, cache: KVCache(config: model.config), logits: .all)
            let V = model.vocabSize
            let rows = (0..<ids.count).map { i in logits[(i * V)..<(i * V + V)].map(Double.init) }
            loss += LoRAGraphGradientTests.crossEntropy(rows, targets: batch.targets[span.start..<(span.start + span.count)], scale: 1)
        }
        return loss
    }

    func testActivationCheckpointingGivesIdenticalGradients() throws {
        let tiny = Self.makeTiny(seed: 31)
        let model = try LlamaModel(files: LoRAGraphGradientTests.files(tiny))
        let adapter = try Self.adapter(tiny.config, seed: 32, dropout: 0.1)
        var results: [[Float]] = []
        for ckpt in [false, true] {
            let g = LoRAGradients(like: adapter)
            LoRAGraph(model: model, adapter: adapter, checkpointActivations: ckpt).run(Self.batch, lossScale: 0.2, grads: g, dropoutSeed: 99)
            results.append(g.all.flatMap { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) })
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertTrue(results[0].contains { $0 != 0 })
    }
}
