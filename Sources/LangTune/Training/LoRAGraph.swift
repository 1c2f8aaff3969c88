import CLangTuneKernels
import Foundation

/// One micro-batch: examples packed back to back (no padding). Attention and
/// RoPE positions stay inside each example; every other op runs on all tokens.
public struct PackedBatch: Sendable {
    /// Token ids of all examples, concatenated.
    public let ids: [Int32]
    /// Target of each position (the next token of the same example), -100 where no loss is taken.
    public let targets: [Int32]
    /// Start offset and length of each example.
    public let spans: [(start: Int, count: Int)]
    public let positions: [Int64]

    /// Packs examples whose `labels[i]` is the label of token i (HF convention): position
    /// i is trained to predict `labels[i + 1]`.
    public init(_ examples: [(ids: [Int32], labels: [Int32])]) {
        var ids: [Int32] = [], targets: [Int32] = [], spans: [(Int, Int)] = [], pos: [Int64] = []
        for e in examples {
            spans.append((ids.count, e.ids.count))
            ids += e.ids
            for i in 0..<e.ids.count {
                targets.append(i + 1 < e.labels.count ? e.labels[i + 1] : -100)
                pos.append(Int64(i))
            }
        }
        self.ids = ids
        self.targets = targets
        self.spans = spans
        self.positions = pos
    }

    public var tokenCount: Int { ids.count }
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}

/// Gradients of a LoRA adapter, shaped like it.
public final class LoRAGradients: @unchecked Sendable {
    public let a: [[LoRATarget: FloatBuffer]]
    public let b: [[LoRATarget: FloatBuffer]]

    public init(like adapter: LoRAAdapter) {
        a = adapter.layers.map { $0.mapValues { FloatBuffer(count: $0.a.count) } }
        b = adapter.layers.map { $0.mapValues { FloatBuffer(count: $0.b.count) } }
    }

    public func zero() {
        for l in a { for g in l.values { g.pointer.update(repeating: 0, count: g.count) } }
        for l in b { for g in l.values { g.pointer.update(repeating: 0, count: g.count) } }
    }

    /// All gradient buffers in a fixed order (layer, target, A then B).
    public var all: [FloatBuffer] {
        var out: [FloatBuffer] = []
        for (la, lb) in zip(a, b) {
            for t in LoRATarget.allCases {
                if let g = la[t] { out.append(g) }
                if let g = lb[t] { out.append(g) }
            }
        }
        return out
    }
}

/// Activations of one decoder layer kept from the forward pass for the backward pass. The two
/// normalized inputs and the gated activation's output are not kept: the backward pass recomputes
/// them from `xIn`, `xMid` and `g`, `u` with the same kernels (same bits), a third less memory per
/// layer for three elementwise passes.
final class LayerActivations: @unchecked Sendable {
    let xIn, q, k, v, att, xMid, g, u: FloatBuffer
    let rstd1, rstd2, lse: FloatBuffer
    /// What Gemma 3's extra norms need kept; nil for Llama.
    let gemma: Gemma3Activations?
    /// `x Aᵀ` of each adapted projection (and the dropped-out input when dropout > 0).
    var loraT: [LoRATarget: FloatBuffer] = [:]
    var loraIn: [LoRATarget: FloatBuffer] = [:]

    init(tokens n: Int, config c: LlamaConfig, adapter: LoRAAdapter, dropout: Bool, workspace ws: Workspace) {
        let H = c.hiddenSize, qW = c.numHeads * c.headDim, kvW = c.numKVHeads * c.headDim, I = c.intermediateSize
        xIn = ws.floats(n * H)
        q = ws.floats(n * qW); k = ws.floats(n * kvW)
        v = ws.floats(n * kvW); att = ws.floats(n * qW)
        xMid = ws.floats(n * H)
        g = ws.floats(n * I); u = ws.floats(n * I)
        rstd1 = ws.floats(n); rstd2 = ws.floats(n)
        lse = ws.floats(n * c.numHeads)
        gemma = c.gemma3 == nil ? nil : Gemma3Activations(tokens: n, config: c, workspace: ws)
        for t in adapter.config.targets {
            loraT[t] = ws.floats(n * adapter.config.rank)
            if dropout && adapter.config.dropout > 0 {
                let inF = t.shape(c).in
                loraIn[t] = ws.floats(n * inF)
            }
        }
    }
}

/// Forward and backward of a Llama model with a trainable LoRA adapter over
/// its frozen float32 weights. Written out op by op (llm.c style): each
/// forward kernel has its backward next to it in Sources/CLangTuneKernels.
/// Gemma 3 runs through the same layer passes, its departures in the hooks of
/// Gemma3LayerGraph.swift (each is the Llama step, same bits, for Llama models).
public final class LoRAGraph: @unchecked Sendable {
    public let model: LlamaModel
    public let adapter: LoRAAdapter
    /// Recompute each layer's activations in the backward pass instead of keeping them:
    /// memory for one layer instead of all, about a third more compute.
    public let checkpointActivations: Bool
    /// Rows of the output head computed at once (the logits of a 128k vocabulary never exist for all rows).
    public var logitsChunk = 64

    /// Rows of logits computed at once. A head without a float32 copy is dequantized once per chunk:
    /// bigger chunks (up to 64 MB of logits) keep that cost small next to the product itself.
    static func logitsRows(chunk: Int, vocab: Int, headHasFloatCopy: Bool) -> Int {
        max(1, headHasFloatCopy ? chunk : max(chunk, (1 << 24) / vocab))
    }

    /// Buffers kept between runs (the step loop allocates nothing once shapes repeat).
    let workspace = Workspace()

    public init(model: LlamaModel, adapter: LoRAAdapter, checkpointActivations: Bool = false) {
        // Callers check `LlamaConfig.requireTrainable` first; the graph has no soft-capped head.
        precondition(model.config.gemma3?.finalLogitSoftcap == nil,
                     "the LoRA training graph has no final logit soft-capping (\(model.config.architecture))")
        self.model = model
        self.adapter = adapter
        self.checkpointActivations = checkpointActivations
    }

    var threads: Threads { model.backend.threads }
    var c: LlamaConfig { model.config }

    // MARK: GEMM helpers

    /// y[rows, out] (+)= x[rows, in] · Wᵀ
    private func linearForward(_ w: LinearWeight, _ x: UnsafePointer<Float>, _ rows: Int, _ y: UnsafeMutablePointer<Float>) {
        model.backend.linear(w, x: x, rows: rows, y: y)
    }

    /// dx[rows, in] (+)= dy[rows, out] · W
    private func linearBackwardInput(_ w: LinearWeight, _ dy: UnsafePointer<Float>, _ rows: Int,
                                     _ dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        model.backend.linearBackwardInput(w, dy: dy, rows: rows, dx: dx, accumulate: accumulate)
    }

    /// Dropout seed of one (layer, target) at one step; masks are recomputed, never stored.
    private func dropoutOffset(layer: Int, target: LoRATarget) -> UInt64 {
        UInt64(layer * 16 + LoRATarget.allCases.firstIndex(of: target)!) << 40
    }

    // MARK: Forward

    /// A projection with its LoRA term; saves `x Aᵀ` (and the dropped-out input) in `acts`.
    private func project(_ w: LinearWeight, _ target: LoRATarget, layer: Int, x: UnsafePointer<Float>, rows: Int,
                         y: UnsafeMutablePointer<Float>, acts: LayerActivations, dropoutSeed: UInt64) {
        linearForward(w, x, rows, y)
        guard let lw = adapter.layers[layer][target], let tBuf = acts.loraT[target] else { return }
        var input = x
        if let dIn = acts.loraIn[target] {
            ltt_dropout_forward(x, dIn.pointer, nil, Int64(rows * lw.inFeatures), Float(adapter.config.dropout),
                                dropoutSeed, dropoutOffset(layer: layer, target: target))
            input = UnsafePointer(dIn.pointer)
        }
        let scratch = workspace.floats(lw.forwardScratchCount)
        lw.addForward(x: input, rows: rows, y: y, scale: adapter.config.scale, t: tBuf.pointer, scratch: scratch.pointer,
                      threads: threads)
    }

    /// Runs layer `li` on the residual stream `x` (updated in place), filling `acts`.
    private func layerForward(_ li: Int, x: UnsafeMutablePointer<Float>, batch: PackedBatch, acts: LayerActivations,
                              ropeCos: FloatBuffer, ropeSin: FloatBuffer, dropoutSeed: UInt64) {
        workspace.scope { layerForwardBody(li, x: x, batch: batch, acts: acts, ropeCos: ropeCos, ropeSin: ropeSin, dropoutSeed: dropoutSeed) }
    }

    private func layerForwardBody(_ li: Int, x: UnsafeMutablePointer<Float>, batch: PackedBatch, acts: LayerActivations,
                                  ropeCos: FloatBuffer, ropeSin: FloatBuffer, dropoutSeed: UInt64) {
        let layer = model.layers[li]
        let N = batch.tokenCount, H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKVHeads
        let qW = nH * hd, kvW = nKV * hd, I = c.intermediateSize
        acts.xIn.pointer.update(from: x, count: N * H)
        let h1 = normalized(x, layer.inputNorm, rows: N, rstd: acts.rstd1)
        project(layer.q, .q, layer: li, x: h1.pointer, rows: N, y: acts.q.pointer, acts: acts, dropoutSeed: dropoutSeed)
        project(layer.k, .k, layer: li, x: h1.pointer, rows: N, y: acts.k.pointer, acts: acts, dropoutSeed: dropoutSeed)
        project(layer.v, .v, layer: li, x: h1.pointer, rows: N, y: acts.v.pointer, acts: acts, dropoutSeed: dropoutSeed)
        normalizeQK(layer, rows: N, acts: acts)
        ltt_rope_forward_table(acts.q.pointer, Int64(N), Int64(nH), Int64(hd), ropeCos.pointer, ropeSin.pointer)
        ltt_rope_forward_table(acts.k.pointer, Int64(N), Int64(nKV), Int64(hd), ropeCos.pointer, ropeSin.pointer)
        let scale = model.attentionScale, window = Int64(model.attentionWindow(layer: li) ?? 0)
        let scratchPer = Int(ltt_attention_forward_scratch_floats(Int64(hd)))
        let scratch = workspace.floats(scratchPer * nH)
        for span in batch.spans {
            let o = span.start
            threads.parallelFor(nH) { s, e in
                for h in s..<e {
                    ltt_attention_forward(acts.q.pointer + o * qW, acts.k.pointer + o * kvW, acts.v.pointer + o * kvW,
                                          acts.att.pointer + o * qW, acts.lse.pointer + o * nH, Int64(span.count),
                                          Int64(nH), Int64(nKV), Int64(hd), scale, Int64(h), Int64(h + 1),
                                          scratch.pointer + h * scratchPer, nil, window)
                }
            }
        }
        let tmp = workspace.floats(N * H)
        project(layer.o, .o, layer: li, x: acts.att.pointer, rows: N, y: tmp.pointer, acts: acts, dropoutSeed: dropoutSeed)
        addOutput(tmp, norm: layer.gemma?.postAttention, keep: acts.gemma?.attnOut, rstd: acts.gemma?.rstdAttnOut, to: x, rows: N)
        acts.xMid.pointer.update(from: x, count: N * H)
        let h2 = normalized(x, layer.postAttentionNorm, rows: N, rstd: acts.rstd2)
        project(layer.gate, .gate, layer: li, x: h2.pointer, rows: N, y: acts.g.pointer, acts: acts, dropoutSeed: dropoutSeed)
        project(layer.up, .up, layer: li, x: h2.pointer, rows: N, y: acts.u.pointer, acts: acts, dropoutSeed: dropoutSeed)
        let act = gatedActivation(acts, rows: N)
        project(layer.down, .down, layer: li, x: act.pointer, rows: N, y: tmp.pointer, acts: acts, dropoutSeed: dropoutSeed)
        addOutput(tmp, norm: layer.gemma?.postFeedForward, keep: acts.gemma?.mlpOut, rstd: acts.gemma?.rstdMLPOut, to: x, rows: N)
    }

    /// RMSNorm of `rows` rows of `x` into a workspace buffer (forward, and again in backward: same bits).
    private func normalized(_ x: UnsafePointer<Float>, _ weight: FloatBuffer, rows: Int, rstd: FloatBuffer) -> FloatBuffer {
        let H = c.hiddenSize, out = workspace.floats(rows * H)
        threads.parallelFor(rows, grain: 8) { s, e in
            ltt_rmsnorm_forward(x + s * H, weight.pointer, out.pointer + s * H, rstd.pointer + s, Int64(e - s), Int64(H),
                                self.c.rmsNormEps)
        }
        return out
    }

    // MARK: Backward

    /// Backward of a projection with LoRA: adds W·dy (+ LoRA path) into dx, accumulates dA, dB.
    private func projectBackward(_ w: LinearWeight, _ target: LoRATarget, layer: Int, x: UnsafePointer<Float>,
                                 dy: UnsafePointer<Float>, rows: Int, dx: UnsafeMutablePointer<Float>, accumulate: Bool,
                                 acts: LayerActivations, grads: LoRAGradients, dropoutSeed: UInt64) {
        linearBackwardInput(w, dy, rows, dx, accumulate: accumulate)
        workspace.scope {
            loraBackward(target, layer: layer, x: x, dy: dy, rows: rows, dx: dx, acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        }
    }

    /// The LoRA part of a projection's backward: dA, dB, and its term of dx.
    private func loraBackward(_ target: LoRATarget, layer: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, rows: Int,
                              dx: UnsafeMutablePointer<Float>, acts: LayerActivations, grads: LoRAGradients, dropoutSeed: UInt64) {
        guard let lw = adapter.layers[layer][target], let tBuf = acts.loraT[target],
              let gA = grads.a[layer][target], let gB = grads.b[layer][target] else { return }
        let inF = lw.inFeatures
        let scratch = workspace.floats(lw.backwardScratchCount(rows: rows))
        let input = acts.loraIn[target].map { UnsafePointer($0.pointer) } ?? x
        if acts.loraIn[target] != nil {
            // dx += dropout'(dt · A)
            let dIn = workspace.floats(rows * inF)
            lw.backward(dy: dy, t: tBuf.pointer, input: input, rows: rows, scale: adapter.config.scale, gradA: gA.pointer,
                        gradB: gB.pointer, dIn: dIn.pointer, accumulate: false, scratch: scratch.pointer, threads: threads)
            ltt_dropout_backward(dIn.pointer, dIn.pointer, Int64(rows * inF), Float(adapter.config.dropout),
                                 dropoutSeed, dropoutOffset(layer: layer, target: target))
            for i in 0..<(rows * inF) { dx[i] += dIn.pointer[i] }
        } else {
            lw.backward(dy: dy, t: tBuf.pointer, input: input, rows: rows, scale: adapter.config.scale, gradA: gA.pointer,
                        gradB: gB.pointer, dIn: dx, accumulate: true, scratch: scratch.pointer, threads: threads)
        }
    }

    /// Backward of layer `li`: `dx` holds d(loss)/d(layer output) and receives d(loss)/d(layer input).
    private func layerBackward(_ li: Int, dx: UnsafeMutablePointer<Float>, batch: PackedBatch, acts: LayerActivations,
                               grads: LoRAGradients, ropeCos: FloatBuffer, ropeSin: FloatBuffer, dropoutSeed: UInt64) {
        workspace.scope {
            layerBackwardBody(li, dx: dx, batch: batch, acts: acts, grads: grads, ropeCos: ropeCos, ropeSin: ropeSin, dropoutSeed: dropoutSeed)
        }
    }

    private func layerBackwardBody(_ li: Int, dx: UnsafeMutablePointer<Float>, batch: PackedBatch, acts: LayerActivations,
                                   grads: LoRAGradients, ropeCos: FloatBuffer, ropeSin: FloatBuffer, dropoutSeed: UInt64) {
        let layer = model.layers[li]
        let N = batch.tokenCount, H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKVHeads
        let qW = nH * hd, kvW = nKV * hd, I = c.intermediateSize
        // MLP: x += down(gated(gate(h2), up(h2))), Gemma's normalized first: dx reaches down through its norm.
        let dAct = workspace.floats(N * I)
        let act = gatedActivation(acts, rows: N)
        let dMLP = outputGradient(dx, norm: layer.gemma?.postFeedForward, kept: acts.gemma?.mlpOut, rstd: acts.gemma?.rstdMLPOut, rows: N)
        projectBackward(layer.down, .down, layer: li, x: act.pointer, dy: dMLP, rows: N, dx: dAct.pointer, accumulate: false,
                        acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        let dg = workspace.floats(N * I), du = workspace.floats(N * I)
        gatedActivationBackward(dAct, acts, dg: dg, du: du, rows: N)
        let dh = workspace.floats(N * H)
        let h2 = normalized(acts.xMid.pointer, layer.postAttentionNorm, rows: N, rstd: workspace.floats(N))
        projectBackward(layer.gate, .gate, layer: li, x: h2.pointer, dy: dg.pointer, rows: N, dx: dh.pointer, accumulate: false,
                        acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        projectBackward(layer.up, .up, layer: li, x: h2.pointer, dy: du.pointer, rows: N, dx: dh.pointer, accumulate: true,
                        acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        let dn = workspace.floats(N * H)
        threads.parallelFor(N, grain: 8) { s, e in
            ltt_rmsnorm_backward(dh.pointer, acts.xMid.pointer, layer.postAttentionNorm.pointer, acts.rstd2.pointer,
                                 dn.pointer, nil, Int64(s), Int64(e), Int64(H))
        }
        for i in 0..<(N * H) { dx[i] += dn.pointer[i] }

        // Attention: x += o(attn(rope(q(h1)), rope(k(h1)), v(h1)))
        let dAtt = workspace.floats(N * qW)
        let dAttOut = outputGradient(dx, norm: layer.gemma?.postAttention, kept: acts.gemma?.attnOut, rstd: acts.gemma?.rstdAttnOut, rows: N)
        projectBackward(layer.o, .o, layer: li, x: acts.att.pointer, dy: dAttOut, rows: N, dx: dAtt.pointer, accumulate: false,
                        acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        let dq = workspace.floats(N * qW), dk = workspace.floats(N * kvW)
        let dv = workspace.floats(N * kvW)
        let scale = model.attentionScale, window = Int64(model.attentionWindow(layer: li) ?? 0)
        for span in batch.spans {
            let o = span.start
            let per = Int(ltt_attention_backward_scratch_floats(Int64(span.count), Int64(nH), Int64(nKV), Int64(hd)))
            let scratch = workspace.floats(per * nKV)
            threads.parallelFor(nKV) { s, e in
                for kvh in s..<e {
                    ltt_attention_backward(acts.q.pointer + o * qW, acts.k.pointer + o * kvW, acts.v.pointer + o * kvW,
                                           acts.att.pointer + o * qW, dAtt.pointer + o * qW, acts.lse.pointer + o * nH,
                                           dq.pointer + o * qW, dk.pointer + o * kvW, dv.pointer + o * kvW,
                                           Int64(span.count), Int64(nH), Int64(nKV), Int64(hd), scale,
                                           Int64(kvh), Int64(kvh + 1), scratch.pointer + kvh * per, nil, window)
                }
            }
        }
        ltt_rope_backward_table(dq.pointer, Int64(N), Int64(nH), Int64(hd), ropeCos.pointer, ropeSin.pointer)
        ltt_rope_backward_table(dk.pointer, Int64(N), Int64(nKV), Int64(hd), ropeCos.pointer, ropeSin.pointer)
        normalizeQKBackward(layer, dq: dq, dk: dk, rows: N, acts: acts)
        let h1 = normalized(acts.xIn.pointer, layer.inputNorm, rows: N, rstd: workspace.floats(N))
        projectBackward(layer.q, .q, layer: li, x: h1.pointer, dy: dq.pointer, rows: N, dx: dh.pointer, accumulate: false,
                        acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        projectBackward(layer.k, .k, layer: li, x: h1.pointer, dy: dk.pointer, rows: N, dx: dh.pointer, accumulate: true,
                        acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        projectBackward(layer.v, .v, layer: li, x: h1.pointer, dy: dv.pointer, rows: N, dx: dh.pointer, accumulate: true,
                        acts: acts, grads: grads, dropoutSeed: dropoutSeed)
        threads.parallelFor(N, grain: 8) { s, e in
            ltt_rmsnorm_backward(dh.pointer, acts.xIn.pointer, layer.inputNorm.pointer, acts.rstd1.pointer,
                                 dn.pointer, nil, Int64(s), Int64(e), Int64(H))
        }
        for i in 0..<(N * H) { dx[i] += dn.pointer[i] }
    }

    // MARK: Whole model

    /// Forward and (when `grads` is given) backward over one micro-batch.
    /// The loss is `Σ -log p(target) · lossScale` over positions with a target;
    /// gradients of that scaled loss are **added** to `grads`. Returns the
    /// unscaled sum of per-token losses (nats), accumulated in Double.
    @discardableResult
    public func run(_ batch: PackedBatch, lossScale: Float, grads: LoRAGradients?, dropoutSeed: UInt64 = 0) -> Double {
        defer { workspace.endStep() }
        return workspace.scope { runBody(batch, lossScale: lossScale, grads: grads, dropoutSeed: dropoutSeed) }
    }

    private func runBody(_ batch: PackedBatch, lossScale: Float, grads: LoRAGradients?, dropoutSeed: UInt64) -> Double {
        let N = batch.tokenCount, H = c.hiddenSize, L = c.numLayers, V = model.vocabSize
        precondition(N > 0)
        let tables = ropeTables(batch)
        let x = workspace.floats(N * H)
        model.embed(batch.ids.map(Int.init), into: x)
        let keepAll = !checkpointActivations || grads == nil
        var acts: [LayerActivations] = []
        var inputs: [FloatBuffer] = []
        let shared = keepAll ? nil : LayerActivations(tokens: N, config: c, adapter: adapter, dropout: grads != nil, workspace: workspace)
        for li in 0..<L {
            let a = shared ?? LayerActivations(tokens: N, config: c, adapter: adapter, dropout: grads != nil, workspace: workspace)
            if !keepAll {
                let saved = workspace.floats(N * H)
                saved.pointer.update(from: x.pointer, count: N * H)
                inputs.append(saved)
            }
            let (ropeCos, ropeSin) = tables.layer(li)
            layerForward(li, x: x.pointer, batch: batch, acts: a, ropeCos: ropeCos, ropeSin: ropeSin, dropoutSeed: dropoutSeed)
            if keepAll && grads != nil { acts.append(a) }
        }
        // Final norm, then the head only on rows that have a target.
        let hf = workspace.floats(N * H), rstdF = workspace.floats(N)
        ltt_rmsnorm_forward(x.pointer, model.finalNorm.pointer, hf.pointer, rstdF.pointer, Int64(N), Int64(H), c.rmsNormEps)
        let rows = (0..<N).filter { batch.targets[$0] >= 0 }
        let dHF = grads != nil ? workspace.floats(N * H, zeroed: true) : nil
        var lossSum = 0.0
        let chunk = Self.logitsRows(chunk: logitsChunk, vocab: V, headHasFloatCopy: model.lmHead.hasWholeCopy)
        let hRows = workspace.floats(chunk * H)
        let logits = workspace.floats(chunk * V)
        let dRows = workspace.floats(chunk * H)
        var start = 0
        while start < rows.count {
            let m = min(chunk, rows.count - start)
            var tg = [Int32](repeating: 0, count: m)
            for j in 0..<m {
                (hRows.pointer + j * H).update(from: hf.pointer + rows[start + j] * H, count: H)
                tg[j] = batch.targets[rows[start + j]]
            }
            model.backend.linear(model.lmHead, x: hRows.pointer, rows: m, y: logits.pointer)
            lossSum += ltt_cross_entropy_forward_backward(logits.pointer, tg, Int64(m), Int64(V), lossScale, nil)
            if let dHF {
                linearBackwardInput(model.lmHead, logits.pointer, m, dRows.pointer, accumulate: false)
                for j in 0..<m { (dHF.pointer + rows[start + j] * H).update(from: dRows.pointer + j * H, count: H) }
            }
            start += m
        }
        guard let grads, let dHF else { return lossSum }
        let dx = workspace.floats(N * H)
        ltt_rmsnorm_backward(dHF.pointer, x.pointer, model.finalNorm.pointer, rstdF.pointer, dx.pointer, nil, 0, Int64(N), Int64(H))
        for li in stride(from: L - 1, through: 0, by: -1) {
            let a: LayerActivations
            let (ropeCos, ropeSin) = tables.layer(li)
            if keepAll { a = acts[li] } else {
                a = shared!
                // The saved input is not needed after this layer: recompute on it in place.
                layerForward(li, x: inputs[li].pointer, batch: batch, acts: a, ropeCos: ropeCos, ropeSin: ropeSin, dropoutSeed: dropoutSeed)
            }
            layerBackward(li, dx: dx.pointer, batch: batch, acts: a, grads: grads, ropeCos: ropeCos, ropeSin: ropeSin,
                          dropoutSeed: dropoutSeed)
        }
        return lossSum
    }
}
