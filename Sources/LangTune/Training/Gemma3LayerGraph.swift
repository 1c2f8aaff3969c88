import CLangTuneKernels
import Foundation

/// What Gemma 3's extra norms keep from the forward pass for the backward pass: the queries and keys
/// before their per-head norms, and the attention and MLP outputs before their post-norms, each with
/// its reciprocal RMS (an RMSNorm's backward needs its input).
final class Gemma3Activations: @unchecked Sendable {
    let qRaw, kRaw, rstdQ, rstdK: FloatBuffer
    let attnOut, mlpOut, rstdAttnOut, rstdMLPOut: FloatBuffer

    init(tokens n: Int, config c: LlamaConfig, workspace ws: Workspace) {
        qRaw = ws.floats(n * c.numHeads * c.headDim); kRaw = ws.floats(n * c.numKVHeads * c.headDim)
        rstdQ = ws.floats(n * c.numHeads); rstdK = ws.floats(n * c.numKVHeads)
        attnOut = ws.floats(n * c.hiddenSize); mlpOut = ws.floats(n * c.hiddenSize)
        rstdAttnOut = ws.floats(n); rstdMLPOut = ws.floats(n)
    }
}

/// RoPE tables of one batch: the global base's, and Gemma 3's local base's for its sliding-window layers.
struct RopeTables {
    let cos, sin: FloatBuffer
    let local: (cos: FloatBuffer, sin: FloatBuffer)?
    let localLayers: Set<Int>

    /// The table layer `li` rotates with.
    func layer(_ li: Int) -> (FloatBuffer, FloatBuffer) {
        if let local, localLayers.contains(li) { return local }
        return (cos, sin)
    }
}

/// The places where a Gemma 3 layer departs from a Llama layer in the training graph, as hooks the
/// shared layer passes call (the inference hooks are in Gemma3Model.swift); for Llama models each
/// is the Llama step with the same kernels in the same order, so Llama's bits do not change.
extension LoRAGraph {
    /// RoPE tables of `batch`'s positions; local layers get their own only when the model has a local base.
    func ropeTables(_ batch: PackedBatch) -> RopeTables {
        let N = batch.tokenCount, half = c.headDim / 2
        func table(_ invFreq: [Float]) -> (cos: FloatBuffer, sin: FloatBuffer) {
            let cos = workspace.floats(N * half), sin = workspace.floats(N * half)
            batch.positions.withUnsafeBufferPointer { p in
                invFreq.withUnsafeBufferPointer { f in
                    ltt_rope_table(p.baseAddress!, Int64(N), f.baseAddress!, Int64(half), cos.pointer, sin.pointer)
                }
            }
            return (cos, sin)
        }
        let global = table(model.rope.invFreq)
        let local = model.localRope.map { table($0.invFreq) }
        let localLayers = Set((0..<c.numLayers).filter { model.attentionWindow(layer: $0) != nil })
        return RopeTables(cos: global.cos, sin: global.sin, local: local, localLayers: localLayers)
    }

    /// Gemma's per-head RMSNorm of the projected queries and keys (before RoPE, as transformers'
    /// Gemma3Attention), in place; the raw projections are kept for the backward pass.
    func normalizeQK(_ layer: LlamaLayer, rows N: Int, acts: LayerActivations) {
        guard let norms = layer.gemma, let g = acts.gemma else { return }
        let hd = c.headDim
        for (y, raw, rstd, w, heads) in [(acts.q, g.qRaw, g.rstdQ, norms.q, c.numHeads), (acts.k, g.kRaw, g.rstdK, norms.k, c.numKVHeads)] {
            raw.pointer.update(from: y.pointer, count: N * heads * hd)
            threads.parallelFor(N * heads, grain: 32) { s, e in
                ltt_rmsnorm_forward(raw.pointer + s * hd, w.pointer, y.pointer + s * hd, rstd.pointer + s, Int64(e - s), Int64(hd),
                                    self.c.rmsNormEps)
            }
        }
    }

    /// Backward of `normalizeQK`, in place on the query and key gradients (after RoPE's backward).
    func normalizeQKBackward(_ layer: LlamaLayer, dq: FloatBuffer, dk: FloatBuffer, rows N: Int, acts: LayerActivations) {
        guard let norms = layer.gemma, let g = acts.gemma else { return }
        let hd = c.headDim
        for (d, raw, rstd, w, heads) in [(dq, g.qRaw, g.rstdQ, norms.q, c.numHeads), (dk, g.kRaw, g.rstdK, norms.k, c.numKVHeads)] {
            threads.parallelFor(N * heads, grain: 32) { s, e in
                ltt_rmsnorm_backward(d.pointer, raw.pointer, w.pointer, rstd.pointer, d.pointer, nil, Int64(s), Int64(e), Int64(hd))
            }
        }
    }

    /// `x += out` for `rows` rows; Gemma first normalizes `out` with its post-attention or post-MLP
    /// `norm`, keeping the un-normalized output in `keep` and its reciprocal RMS in `rstd`.
    func addOutput(_ out: FloatBuffer, norm: FloatBuffer?, keep: FloatBuffer?, rstd: FloatBuffer?,
                   to x: UnsafeMutablePointer<Float>, rows N: Int) {
        let H = c.hiddenSize
        if let norm, let keep, let rstd {
            keep.pointer.update(from: out.pointer, count: N * H)
            threads.parallelFor(N, grain: 8) { s, e in
                ltt_rmsnorm_forward(keep.pointer + s * H, norm.pointer, out.pointer + s * H, rstd.pointer + s, Int64(e - s),
                                    Int64(H), self.c.rmsNormEps)
            }
        }
        for i in 0..<(N * H) { x[i] += out.pointer[i] }
    }

    /// The gradient of a layer half's output projection given `dx`, the gradient of the residual
    /// stream after `addOutput`: `dx` itself for Llama, through the post-norm for Gemma. `dx` is
    /// not changed (the residual path carries it on unchanged).
    func outputGradient(_ dx: UnsafeMutablePointer<Float>, norm: FloatBuffer?, kept: FloatBuffer?, rstd: FloatBuffer?,
                        rows N: Int) -> UnsafePointer<Float> {
        guard let norm, let kept, let rstd else { return UnsafePointer(dx) }
        let H = c.hiddenSize, d = workspace.floats(N * H)
        threads.parallelFor(N, grain: 8) { s, e in
            ltt_rmsnorm_backward(dx, kept.pointer, norm.pointer, rstd.pointer, d.pointer, nil, Int64(s), Int64(e), Int64(H))
        }
        return UnsafePointer(d.pointer)
    }

    /// The MLP's gated activation of the kept `g`, `u` into a workspace buffer: silu(g) · u, or
    /// Gemma's gelu_tanh(g) · u.
    func gatedActivation(_ acts: LayerActivations, rows: Int) -> FloatBuffer {
        let n = rows * c.intermediateSize, out = workspace.floats(n)
        let gemma = c.gemma3 != nil
        threads.parallelFor(n, grain: 1024) { s, e in
            if gemma {
                ltt_geglu_forward(acts.g.pointer + s, acts.u.pointer + s, out.pointer + s, Int64(e - s))
            } else {
                ltt_swiglu_forward(acts.g.pointer + s, acts.u.pointer + s, out.pointer + s, Int64(e - s))
            }
        }
        return out
    }

    /// Backward of `gatedActivation`: `dg`, `du` from the gradient of its output.
    func gatedActivationBackward(_ dAct: FloatBuffer, _ acts: LayerActivations, dg: FloatBuffer, du: FloatBuffer, rows: Int) {
        let n = rows * c.intermediateSize
        let gemma = c.gemma3 != nil
        threads.parallelFor(n, grain: 1024) { s, e in
            if gemma {
                ltt_geglu_backward(dAct.pointer + s, acts.g.pointer + s, acts.u.pointer + s, dg.pointer + s, du.pointer + s, Int64(e - s))
            } else {
                ltt_swiglu_backward(dAct.pointer + s, acts.g.pointer + s, acts.u.pointer + s, dg.pointer + s, du.pointer + s, Int64(e - s))
            }
        }
    }
}
