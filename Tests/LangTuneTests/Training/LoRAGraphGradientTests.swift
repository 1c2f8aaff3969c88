import CLangTuneKernels
import XCTest
@testable import LangTune

/// The whole LoRA training graph against an independent Float64 implementation
/// of a tiny Llama model: forward loss, logits through the inference path, and
/// every LoRA gradient checked by central finite differences in Float64.
final class LoRAGraphGradientTests: XCTestCase {
    struct Tiny {
        let config: LlamaConfig
        let weights: [String: [Double]]
        let shapes: [String: [Int]]
    }
    typealias LoRAValues = [String: (a: [Double], b: [Double], r: Int)]

    /// Seeded random weights, rounded through Float so both sides see the same float32 values.
    struct RandomWeights {
        var rng: SplitMix64
        var weights: [String: [Double]] = [:], shapes: [String: [Int]] = [:]

        mutating func add(_ name: String, _ shape: [Int], center: Double = 0, scale: Double) {
            shapes[name] = shape
            weights[name] = (0..<shape.reduce(1, *)).map { _ in Double(Float(center + (rng.nextDouble() * 2 - 1) * scale)) }
        }

        /// The seven projections of the layer named `prefix` (`model.layers.N.`), shaped for `c`.
        mutating func addProjections(_ prefix: String, _ c: LlamaConfig) {
            for t in LoRATarget.allCases {
                let (out, inF) = t.shape(c)
                add(prefix + "\(t.block).\(t.rawValue).weight", [out, inF], scale: t == .down ? 0.3 : 0.4)
            }
        }
    }

    /// `x Wᵀ` of tensor `name` plus, when `lora` adapts `module` (`layer.q_proj`), its term (Float64).
    static func linear(_ t: Tiny, _ x: [[Double]], _ name: String, _ module: String, lora: LoRAValues,
                       loraScale: Double) -> [[Double]] {
        let w = t.weights[name]!, shape = t.shapes[name]!, out = shape[0], inF = shape[1]
        return x.map { row in
            var y = (0..<out).map { o in (0..<inF).reduce(0.0) { $0 + w[o * inF + $1] * row[$1] } }
            if let l = lora[module] {
                let tt = (0..<l.r).map { k in (0..<inF).reduce(0.0) { $0 + l.a[k * inF + $1] * row[$1] } }
                for o in 0..<out { y[o] += loraScale * (0..<l.r).reduce(0.0) { $0 + l.b[o * l.r + $1] * tt[$1] } }
            }
            return y
        }
    }

    /// The adapter's matrices in Float64 by module (`layer.q_proj`).
    static func values(of adapter: LoRAAdapter) -> LoRAValues {
        var d: LoRAValues = [:]
        for (l, layer) in adapter.layers.enumerated() {
            for (t, w) in layer {
                d["\(l).\(t.rawValue)"] = (Array(UnsafeBufferPointer(start: w.a.pointer, count: w.a.count)).map(Double.init),
                                           Array(UnsafeBufferPointer(start: w.b.pointer, count: w.b.count)).map(Double.init), w.rank)
            }
        }
        return d
    }

    /// Σ scale · (lse(row) - row[target]) over the rows of one example that have a target.
    static func crossEntropy(_ logits: [[Double]], targets: ArraySlice<Int32>, scale: Double) -> Double {
        var loss = 0.0
        for (row, target) in zip(logits, targets) where target >= 0 {
            let mx = row.max()!
            loss += (mx + log(row.reduce(0) { $0 + exp($1 - mx) }) - row[Int(target)]) * scale
        }
        return loss
    }

    static func makeTiny(seed: UInt64) -> Tiny {
        let c = LlamaConfig(architecture: "llama", hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4,
                            numKVHeads: 2, headDim: 4, vocabSize: 40, rmsNormEps: 1e-5, ropeTheta: 10000,
                            maxPositionEmbeddings: 64, tieWordEmbeddings: false)
        var w = RandomWeights(rng: SplitMix64(seed: seed))
        w.add("model.embed_tokens.weight", [40, 16], scale: 1)
        for l in 0..<2 {
            let p = "model.layers.\(l)."
            w.add(p + "input_layernorm.weight", [16], center: 1, scale: 0.2)
            w.add(p + "post_attention_layernorm.weight", [16], center: 1, scale: 0.2)
            w.addProjections(p, c)
        }
        w.add("model.norm.weight", [16], center: 1, scale: 0.2)
        w.add("lm_head.weight", [40, 16], scale: 0.5)
        return Tiny(config: c, weights: w.weights, shapes: w.shapes)
    }

    static func files(_ t: Tiny) -> ModelFiles {
        var tensors: [String: WeightTensor] = [:]
        for (name, values) in t.weights {
            let st = ByteStorage(copying: values.map { Float($0) })
            tensors[name] = WeightTensor(name: name, shape: t.shapes[name]!, dtype: .f32, storage: st, offset: 0, byteCount: st.count)
        }
        return ModelFiles(path: "tiny", format: .safetensors, config: t.config, tensors: tensors,
                          tokenizer: .gguf(metadata: [:], file: "tiny"), chatTemplate: nil, generationDefaults: nil)
    }

    /// Float64 reference: loss = scale · Σ CE(target) over positions, and per-position logits.
    static func reference(_ t: Tiny, lora: LoRAValues, loraScale: Double,
                          batch: PackedBatch, scale: Double) -> (loss: Double, logits: [[Double]]) {
        let c = t.config, H = 16, hd = 4, nH = 4, nKV = 2
        func W(_ n: String) -> [Double] { t.weights[n]! }
        func linear(_ x: [[Double]], _ name: String, _ module: String) -> [[Double]] {
            Self.linear(t, x, name, module, lora: lora, loraScale: loraScale)
        }
        func rms(_ x: [[Double]], _ name: String) -> [[Double]] {
            let w = W(name)
            return x.map { r in
                let ms = r.reduce(0) { $0 + $1 * $1 } / Double(r.count)
                return r.enumerated().map { w[$0.offset] * $0.element / (ms + Double(c.rmsNormEps)).squareRoot() }
            }
        }
        func rope(_ x: inout [Double], heads: Int, pos: Int) {
            for h in 0..<heads { for i in 0..<(hd / 2) {
                let f = Double(Float(1.0 / pow(Float(10000), Float(2 * i) / Float(hd))))
                let ang = Double(Float(pos) * Float(f))
                let a = x[h * hd + i], b = x[h * hd + i + hd / 2]
                x[h * hd + i] = a * cos(ang) - b * sin(ang)
                x[h * hd + i + hd / 2] = b * cos(ang) + a * sin(ang)
            } }
        }
        var loss = 0.0
        var allLogits: [[Double]] = []
        for span in batch.spans {
            let ids = batch.ids[span.start..<(span.start + span.count)].map { Int($0) }
            var x = ids.map { id in Array(W("model.embed_tokens.weight")[(id * H)..<(id * H + H)]) }
            for l in 0..<2 {
                let p = "model.layers.\(l)."
                let h1 = rms(x, p + "input_layernorm.weight")
                var q = linear(h1, p + "self_attn.q_proj.weight", "\(l).q_proj")
                var k = linear(h1, p + "self_attn.k_proj.weight", "\(l).k_proj")
                let v = linear(h1, p + "self_attn.v_proj.weight", "\(l).v_proj")
                for i in 0..<ids.count { rope(&q[i], heads: nH, pos: i); rope(&k[i], heads: nKV, pos: i) }
                var att = [[Double]](repeating: [Double](repeating: 0, count: nH * hd), count: ids.count)
                for h in 0..<nH {
                    let kh = h / (nH / nKV)
                    for i in 0..<ids.count {
                        var sc = (0...i).map { j in (0..<hd).reduce(0.0) { $0 + q[i][h * hd + $1] * k[j][kh * hd + $1] } / Double(hd).squareRoot() }
                        let mx = sc.max()!
                        sc = sc.map { exp($0 - mx) }
                        let z = sc.reduce(0, +)
                        for j in 0...i { for d in 0..<hd { att[i][h * hd + d] += sc[j] / z * v[j][kh * hd + d] } }
                    }
                }
                let o = linear(att, p + "self_attn.o_proj.weight", "\(l).o_proj")
                for i in 0..<x.count { for d in 0..<H { x[i][d] += o[i][d] } }
                let h2 = rms(x, p + "post_attention_layernorm.weight")
                let g = linear(h2, p + "mlp.gate_proj.weight", "\(l).gate_proj")
                let u = linear(h2, p + "mlp.up_proj.weight", "\(l).up_proj")
                let a = zip(g, u).map { zip($0, $1).map { $0 / (1 + exp(-$0)) * $1 } }
                let d = linear(a, p + "mlp.down_proj.weight", "\(l).down_proj")
                for i in 0..<x.count { for e in 0..<H { x[i][e] += d[i][e] } }
            }
            let logits = linear(rms(x, "model.norm.weight"), "lm_head.weight", "head")
            allLogits += logits
            loss += crossEntropy(logits, targets: batch.targets[span.start..<(span.start + span.count)], scale: scale)
        }
        return (loss, allLogits)
    }

    func testLossAndEveryLoRAGradientMatchFloat64FiniteDifferences() throws {
        let seed = UInt64(Date().timeIntervalSince1970)
        let tiny = Self.makeTiny(seed: seed)
        let model = try LlamaModel(files: Self.files(tiny), backend: CPUBackend(threads: Threads(2)))
        let cfg = LoRAConfig(rank: 2, alpha: 3, dropout: 0)
        let adapter = try LoRAAdapter(config: cfg, model: tiny.config, seed: seed &+ 1)
        // Nonzero B so that gradients reach A.
        var rng = SplitMix64(seed: seed &+ 2)
        for l in adapter.layers { for w in l.values { for i in 0..<w.b.count { w.b.pointer[i] = Float(rng.nextDouble() - 0.5) } } }
        let batch = PackedBatch([
            (ids: [3, 7, 11, 2, 9], labels: [-100, -100, 11, 2, 9]),
            (ids: [5, 1, 30, 22], labels: [-100, 1, 30, -100]),
        ])
        let lossScale = 1 / Float(batch.targetCount)
        let graph = LoRAGraph(model: model, adapter: adapter)
        let grads = LoRAGradients(like: adapter)
        let loss = graph.run(batch, lossScale: lossScale, grads: grads) * Double(lossScale)

        let base = Self.values(of: adapter)
        let ref = Self.reference(tiny, lora: base, loraScale: Double(cfg.scale), batch: batch, scale: Double(lossScale))
        XCTAssertEqual(loss, ref.loss, accuracy: 1e-5 * abs(ref.loss), "forward loss (seed \(seed))")

        // Inference path with the adapter gives the reference logits too.
        model.adapter = adapter
        let cache = KVCache(config: tiny.config)
        let logits = model.forward(Array(batch.ids[0..<5].map(Int.init)), cache: cache, logits: .all)
        for i in 0..<5 { for vi in 0..<40 {
            XCTAssertEqual(Double(logits[i * 40 + vi]), ref.logits[i][vi], accuracy: 1e-4 * max(1, abs(ref.logits[i][vi])))
        } }
        model.adapter = nil

        // Central differences on every A and B entry of a few modules (all entries, all modules is slow in Float64).
        let h = 1e-5
        var checked = 0
        for (l, t) in [(0, LoRATarget.q), (0, .v), (1, .k), (1, .o), (0, .gate), (1, .up), (0, .down), (1, .down)] {
            let key = "\(l).\(t.rawValue)"
            for which in ["a", "b"] {
                let analytic = which == "a" ? grads.a[l][t]! : grads.b[l][t]!
                let count = analytic.count
                var maxErr = 0.0, maxG = 0.0
                for idx in stride(from: 0, to: count, by: max(1, count / 12)) {
                    var plus = base, minus = base
                    if which == "a" { plus[key]!.a[idx] += h; minus[key]!.a[idx] -= h } else { plus[key]!.b[idx] += h; minus[key]!.b[idx] -= h }
                    let fd = (Self.reference(tiny, lora: plus, loraScale: Double(cfg.scale), batch: batch, scale: Double(lossScale)).loss
                        - Self.reference(tiny, lora: minus, loraScale: Double(cfg.scale), batch: batch, scale: Double(lossScale)).loss) / (2 * h)
                    maxErr = max(maxErr, abs(fd - Double(analytic.pointer[idx])))
                    maxG = max(maxG, abs(fd))
                    checked += 1
                }
                XCTAssertLessThanOrEqual(maxErr, 1e-3 * max(maxG, 1e-3), "d loss / d \(key).lora_\(which.uppercased()) (seed \(seed))")
            }
        }
        XCTAssertGreaterThan(checked, 100)
    }

    func testActivationCheckpointingGivesIdenticalGradients() throws {
        let tiny = Self.makeTiny(seed: 11)
        let model = try LlamaModel(files: Self.files(tiny))
        let adapter = try LoRAAdapter(config: LoRAConfig(rank: 2, alpha: 4, dropout: 0.1), model: tiny.config, seed: 5)
        for l in adapter.layers { for w in l.values { for i in 0..<w.b.count { w.b.pointer[i] = Float(i % 7) * 0.01 } } }
        let batch = PackedBatch([(ids: [1, 2, 3, 4, 5, 6], labels: [-100, 2, 3, 4, 5, 6])])
        var results: [[Float]] = []
        for ckpt in [false, true] {
            let g = LoRAGradients(like: adapter)
            LoRAGraph(model: model, adapter: adapter, checkpointActivations: ckpt).run(batch, lossScale: 0.2, grads: g, dropoutSeed: 99)
            results.append(g.all.flatMap { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) })
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertTrue(results[0].contains { $0 != 0 })
    }
}
