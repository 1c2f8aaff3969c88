import CLangTuneKernels
import Foundation

/// Which positions' logits a forward pass returns.
public enum LogitsRequest: Sendable {
    /// Only the last new position (generation).
    case last
    /// Every new position (scoring, perplexity).
    case all
}

/// How the frozen base is stored for QLoRA: the targeted projections as NF4.
public struct FrozenQuantization: Sendable, Equatable {
    public var targets: Set<LoRATarget>
    /// Double quantization of the NF4 block scales (bitsandbytes' `compress_statistics`).
    public var doubleQuant: Bool
    /// Keep a GGUF's own quantized blocks (Q4_0, Q4_1, Q8_0, K-quants …) as the frozen weights instead
    /// of re-quantizing them to NF4 (no second quantization error); float sources still become NF4.
    public var keepSourceBlocks: Bool
    /// Root folder of a `QuantizedBaseCache` (nil: quantize at every load, keep nothing on disk).
    public var cacheDirectory: String?
    public init(targets: Set<LoRATarget> = Set(LoRATarget.allCases), doubleQuant: Bool = true, keepSourceBlocks: Bool = false,
                cacheDirectory: String? = nil) {
        self.targets = targets
        self.doubleQuant = doubleQuant
        self.keepSourceBlocks = keepSourceBlocks
        self.cacheDirectory = cacheDirectory
    }
}

/// Which LoRA adapter each row of a pass uses.
enum RowAdapters {
    /// One adapter (or none) for every row.
    case same(LoRAAdapter?)
    /// Row `r` uses `list[r]` (nil: the base); products are computed row by row so every row gets
    /// exactly what it would alone (continuous batching in `langtune serve`).
    case perRow([LoRAAdapter?])
}

/// One decoder layer's frozen weights.
struct LlamaLayer: @unchecked Sendable {
    let inputNorm: FloatBuffer
    let postAttentionNorm: FloatBuffer
    let q, k, v, o: LinearWeight
    let gate, up, down: LinearWeight
    /// Gemma 3's extra norms (then `postAttentionNorm` is its norm before the MLP); nil for Llama.
    var gemma: Gemma3LayerNorms? = nil
    /// The seven projections, in LoRATarget order.
    var projections: [LinearWeight] { [q, k, v, o, gate, up, down] }
}

/// A Llama-family decoder (Llama 2/3, Mistral, Qwen2, SmolLM) for inference:
/// RMSNorm, RoPE, grouped-query causal attention, SwiGLU, tied or separate head.
/// Gemma 3 runs through the same passes, its departures in the hooks of Gemma3Model.swift.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let backend: any ComputeBackend
    let embedding: LinearWeight
    let layers: [LlamaLayer]
    let finalNorm: FloatBuffer
    let lmHead: LinearWeight
    let rope: Rope
    /// RoPE of Gemma 3's local (sliding-window) layers; nil otherwise.
    let localRope: Rope?
    /// A LoRA adapter applied on top of the frozen weights (unmerged: `W x + s·B A x`).
    /// Set it before running the model; `nil` is the base model.
    public var adapter: LoRAAdapter?
    /// What the NF4 cache did when this model was built with `FrozenQuantization.cacheDirectory`.
    public private(set) var quantizationCache: QuantizedBaseCache.Outcome?

    /// Builds the model from loaded files. Quantized weights are dequantized to
    /// float32 once (GEMM) and kept as blocks for matrix-vector products.
    public init(files: ModelFiles, backend: any ComputeBackend = CPUBackend(), quantization: FrozenQuantization? = nil) throws {
        let c = files.config
        config = c
        self.backend = backend
        func t(_ name: String) throws -> WeightTensor {
            guard let w = files.tensors[name] else { throw FormatError(file: files.path, "missing tensor \(name)") }
            return w
        }
        func vec(_ name: String) throws -> FloatBuffer { FloatBuffer(try dequantize(try t(name))) }
        // NF4 weights: the file's own (a bitsandbytes folder), else the cache's when QLoRA uses one.
        var stored = files.nf4
        var cacheOutcome: QuantizedBaseCache.Outcome?
        if let quantization, let root = quantization.cacheDirectory {
            let r = try QuantizedBaseCache(root: root).weights(for: files, quantization: quantization, threads: backend.threads)
            stored.merge(r.nf4) { a, _ in a }
            cacheOutcome = r.outcome
        }
        func lin(_ name: String, bias: Bool = false) throws -> LinearWeight {
            let b = bias ? try t(name + ".bias") : nil
            if let q = stored[name + ".weight"] { return LinearWeight(nf4: q, bias: try b.map { try dequantize($0) }) }
            let w = try t(name + ".weight")
            if let quantization, let target = LoRATarget.allCases.first(where: { name.hasSuffix("." + $0.rawValue) }),
               quantization.targets.contains(target) {
                guard w.shape.count == 2 else { throw FormatError(file: files.path, "\(name).weight is not a matrix") }
                if quantization.keepSourceBlocks, w.dtype.isQuantized, b == nil { return try LinearWeight(blocksOnly: w) }
                let values = try dequantize(w)
                return LinearWeight(nf4: NF4Tensor.quantize(values, shape: w.shape, doubleQuant: quantization.doubleQuant,
                                                            threads: backend.threads),
                                    bias: try b.map { try dequantize($0) })
            }
            if keepBlocksForBF16(w), b == nil { return try LinearWeight(blocksOnly: w) }
            return try LinearWeight(w, bias: b)
        }
        // `--dtype bf16` without QLoRA: a quantized or 16-bit weight keeps the file's blocks (matrix-vector
        // products and row lookups read them) plus a bf16 copy for the products, no float32 copy.
        func keepBlocksForBF16(_ w: WeightTensor) -> Bool {
            backend.usesBF16 && quantization == nil && w.shape.count == 2 && w.cols % w.dtype.blockSize == 0
                && (w.dtype.isQuantized || w.dtype == .bf16 || w.dtype == .f16)
        }
        // QLoRA keeps 16-bit embeddings and head as stored (tiles and row lookups read them), so an
        // 8B model's 2 × 1 GB of bf16 does not become 2 × 2 GB of float32.
        func table(_ name: String) throws -> LinearWeight {
            let w = try t(name + ".weight")
            if quantization != nil, w.dtype == .bf16 || w.dtype == .f16 { return try LinearWeight(blocksOnly: w) }
            if keepBlocksForBF16(w) { return try LinearWeight(blocksOnly: w) }
            return try LinearWeight(w)
        }
        embedding = try table("model.embed_tokens")
        layers = try (0..<c.numLayers).map { i in
            let p = "model.layers.\(i)."
            let gemma = c.gemma3 == nil ? nil : Gemma3LayerNorms(
                postAttention: try vec(p + "post_attention_layernorm.weight"),
                postFeedForward: try vec(p + "post_feedforward_layernorm.weight"),
                q: try vec(p + "self_attn.q_norm.weight"), k: try vec(p + "self_attn.k_norm.weight"))
            return LlamaLayer(
                inputNorm: try vec(p + "input_layernorm.weight"),
                postAttentionNorm: try vec(p + (gemma == nil ? "post_attention_layernorm.weight" : "pre_feedforward_layernorm.weight")),
                q: try lin(p + "self_attn.q_proj", bias: c.attentionBias),
                k: try lin(p + "self_attn.k_proj", bias: c.attentionBias),
                v: try lin(p + "self_attn.v_proj", bias: c.attentionBias),
                o: try lin(p + "self_attn.o_proj"),
                gate: try lin(p + "mlp.gate_proj"),
                up: try lin(p + "mlp.up_proj"),
                down: try lin(p + "mlp.down_proj"),
                gemma: gemma)
        }
        finalNorm = try vec("model.norm.weight")
        lmHead = c.tieWordEmbeddings || files.tensors["lm_head.weight"] == nil ? embedding : try table("lm_head")
        rope = Rope(headDim: c.headDim, theta: c.ropeTheta, scaling: c.ropeScaling)
        localRope = c.gemma3.map { Rope(headDim: c.headDim, theta: $0.localRopeTheta, scaling: nil) }
        quantizationCache = cacheOutcome
        if backend.usesBF16 { prepareBF16(fromSource: quantization == nil) }
    }

    /// bf16 copies the bf16 products read: of the float32 weights, and with `fromSource` of weights kept
    /// as the file's blocks (not NF4).
    func prepareBF16(fromSource: Bool = false) {
        for l in layers { for w in l.projections { w.prepareBF16(fromSource: fromSource, threads: backend.threads) } }
        lmHead.prepareBF16(fromSource: fromSource, threads: backend.threads)
    }

    /// Assembles a model from weights already built (synthetic models for benchmarks and tests).
    init(config: LlamaConfig, backend: any ComputeBackend, embedding: LinearWeight, layers: [LlamaLayer],
         finalNorm: FloatBuffer, lmHead: LinearWeight?) {
        self.config = config
        self.backend = backend
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.lmHead = lmHead ?? embedding
        rope = Rope(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling)
        localRope = config.gemma3.map { Rope(headDim: config.headDim, theta: $0.localRopeTheta, scaling: nil) }
        if backend.usesBF16 { prepareBF16() }
    }

    /// Runs `tokens` at positions `cache.length ..< cache.length + tokens.count`,
    /// appends their keys and values to `cache`, and returns logits:
    /// `[vocab]` for `.last`, `[tokens.count * vocab]` for `.all`.
    public func forward(_ tokens: [Int], cache: KVCache, logits request: LogitsRequest = .last) -> [Float] {
        forward(tokens, cache: cache, logits: request, adapters: .same(adapter))
    }

    /// `forward` with `adapter` (nil: the base) in place of the model's own: a server runs requests for
    /// different adapters on one model.
    public func forward(_ tokens: [Int], cache: KVCache, logits request: LogitsRequest = .last, adapter: LoRAAdapter?) -> [Float] {
        forward(tokens, cache: cache, logits: request, adapters: .same(adapter))
    }

    func forward(_ tokens: [Int], cache: KVCache, logits request: LogitsRequest, adapters: RowAdapters) -> [Float] {
        let c = config
        let T = tokens.count
        precondition(T > 0, "forward needs at least one token")
        let H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKVHeads
        let qW = nH * hd, kvW = nKV * hd, I = c.intermediateSize
        let p0 = cache.length
        cache.reserve(p0 + T, bf16: backend.usesReducedPrecisionDecoding)

        let x = FloatBuffer(count: T * H, zeroed: false)
        let kNew = FloatBuffer(count: T * kvW, zeroed: false), vNew = FloatBuffer(count: T * kvW, zeroed: false)
        let h = FloatBuffer(count: T * H, zeroed: false)
        let q = FloatBuffer(count: T * qW, zeroed: false)
        let att = FloatBuffer(count: T * qW, zeroed: false)
        let tmp = FloatBuffer(count: T * max(H, qW), zeroed: false)
        let g = FloatBuffer(count: T * I, zeroed: false)
        let u = FloatBuffer(count: T * I, zeroed: false)
        let threads = backend.threads

        embed(tokens, into: x)
        let scale = attentionScale
        // One softmax row per head, so threads never share scratch space.
        let scratch = FloatBuffer(count: nH * (p0 + T), zeroed: false)
        let flash: (lse: FloatBuffer, scratch: FloatBuffer, per: Int)? = p0 == 0 && T >= 16 ? {
            let per = Int(ltt_attention_forward_scratch_floats(Int64(hd)))
            return (FloatBuffer(count: nH * T, zeroed: false), FloatBuffer(count: per * nH, zeroed: false), per)
        }() : nil

        for (li, layer) in layers.enumerated() {
            for t in 0..<T { lt_rmsnorm(x.pointer + t * H, layer.inputNorm.pointer, h.pointer + t * H, Int64(H), c.rmsNormEps) }
            project(layer.q, .q, layer: li, x: h.pointer, rows: T, y: q.pointer, adapters: adapters)
            project(layer.k, .k, layer: li, x: h.pointer, rows: T, y: kNew.pointer, adapters: adapters)
            project(layer.v, .v, layer: li, x: h.pointer, rows: T, y: vNew.pointer, adapters: adapters)
            for t in 0..<T { positionQK(layer, li, q: q.pointer + t * qW, k: kNew.pointer + t * kvW, position: p0 + t) }
            cache.store(layer: li, position: p0, keys: kNew.pointer, values: vNew.pointer, rows: T)
            let n = p0 + T
            let window = attentionWindow(layer: li)
            if let flash {
                // A prompt on an empty cache: the training graph's blocked kernel (tiles of queries x keys,
                // online softmax) on the prompt's own float32 keys and values; a sliding-window layer's
                // tiles start at their first row's window, so keys before it cost nothing.
                let w = Int64(window ?? 0)
                threads.parallelFor(nH) { s, e in
                    for head in s..<e {
                        ltt_attention_forward(q.pointer, kNew.pointer, vNew.pointer, att.pointer, flash.lse.pointer, Int64(T),
                                              Int64(nH), Int64(nKV), Int64(hd), scale, Int64(head), Int64(head + 1),
                                              flash.scratch.pointer + head * flash.per, nil, w)
                    }
                }
            } else if let window, n > window {
                // A sliding-window layer past its window: each query over its own last `window` keys.
                threads.parallelFor(nH) { s, e in
                    for head in s..<e {
                        for t in 0..<T {
                            let start = max(0, p0 + t + 1 - window)
                            cache.attend(layer: li, q: q.pointer + t * qW, out: att.pointer + t * qW, T: 1, p0: p0 + t - start,
                                         heads: nH, kvHeads: nKV, headDim: hd, scale: scale, h0: head, h1: head + 1,
                                         scratch: scratch.pointer + head * n, from: start)
                        }
                    }
                }
            } else {
                threads.parallelFor(nH) { s, e in
                    for head in s..<e {
                        cache.attend(layer: li, q: q.pointer, out: att.pointer, T: T, p0: p0, heads: nH, kvHeads: nKV, headDim: hd,
                                     scale: scale, h0: head, h1: head + 1, scratch: scratch.pointer + head * n)
                    }
                }
            }
            project(layer.o, .o, layer: li, x: att.pointer, rows: T, y: tmp.pointer, adapters: adapters)
            addResidual(tmp, norm: layer.gemma?.postAttention, to: x, rows: T)

            mlpResidual(layer, li, x: x, h: h, g: g, u: u, tmp: tmp, rows: T, adapters: adapters)
        }
        cache.length = p0 + T

        let first = request == .last ? T - 1 : 0
        let rows = T - first
        for t in first..<T {
            lt_rmsnorm(x.pointer + t * H, finalNorm.pointer, h.pointer + (t - first) * H, Int64(H), c.rmsNormEps)
        }
        var out = [Float](repeating: 0, count: rows * lmHead.outFeatures)
        out.withUnsafeMutableBufferPointer { o in
            backend.linear(lmHead, x: h.pointer, rows: rows, y: o.baseAddress!)
        }
        softcapLogits(&out)
        return out
    }

    /// The MLP half of a layer on `rows` rows: x += down(silu(gate(n)) · up(n)), n = RMSNorm(x)
    /// (Gemma: GeGLU, and the output normalized before the add).
    func mlpResidual(_ layer: LlamaLayer, _ li: Int, x: FloatBuffer, h: FloatBuffer, g: FloatBuffer, u: FloatBuffer,
                     tmp: FloatBuffer, rows: Int, adapters: RowAdapters) {
        let H = config.hiddenSize
        for t in 0..<rows {
            lt_rmsnorm(x.pointer + t * H, layer.postAttentionNorm.pointer, h.pointer + t * H, Int64(H), config.rmsNormEps)
        }
        project(layer.gate, .gate, layer: li, x: h.pointer, rows: rows, y: g.pointer, adapters: adapters)
        project(layer.up, .up, layer: li, x: h.pointer, rows: rows, y: u.pointer, adapters: adapters)
        gatedActivation(g, u, count: rows * config.intermediateSize)
        project(layer.down, .down, layer: li, x: g.pointer, rows: rows, y: tmp.pointer, adapters: adapters)
        addResidual(tmp, norm: layer.gemma?.postFeedForward, to: x, rows: rows)
    }

    /// A frozen projection plus, when an adapter adapts it, its LoRA term.
    func project(_ w: LinearWeight, _ target: LoRATarget, layer: Int, x: UnsafePointer<Float>, rows: Int,
                 y: UnsafeMutablePointer<Float>, adapters: RowAdapters) {
        switch adapters {
        case .same(let adapter):
            backend.linear(w, x: x, rows: rows, y: y)
            if let a = adapter, let lw = a.weights(layer: layer, target) {
                lw.add(x: x, rows: rows, y: y, scale: a.config.scale, threads: backend.threads)
            }
        case .perRow(let list):
            // The base product once for all rows; then each row's rank-r product with its own adapter,
            // as a lone request computes it. Rows go to the threads whole: a row's product is a few
            // microseconds of dot products (each output's dot the same however outputs are split), too
            // small to split, and 16 rows one after another on one core left the other cores idle.
            backend.linearRowwise(w, x: x, rows: rows, y: y)
            backend.threads.parallelFor(rows) { s, e in
                for r in s..<e {
                    guard let a = list[r], let lw = a.weights(layer: layer, target) else { continue }
                    lw.add(x: x + r * w.inFeatures, rows: 1, y: y + r * w.outFeatures, scale: a.config.scale)
                }
            }
        }
    }

    /// Vocabulary size of the output head.
    public var vocabSize: Int { lmHead.outFeatures }

    /// Bytes the matrix-vector products of one generated token read: every projection and the head, as
    /// the kernels read them (a GGUF's Q4/Q5/Q8/K-quant blocks, NF4 codes and scales, or float32).
    public var weightBytesReadPerToken: Int {
        func bytes(_ w: LinearWeight) -> Int {
            if let b = w.blocks, b.dtype.hasBlockMatvec { return b.byteCount }
            if w.dense == nil, w.nf4 != nil { return w.outFeatures * w.inFeatures / 2 + w.outFeatures * w.inFeatures / 64 * 4 }
            return w.outFeatures * w.inFeatures * 4
        }
        return layers.reduce(0) { $0 + $1.projections.reduce(0) { $0 + bytes($1) } } + bytes(lmHead)
    }
}
