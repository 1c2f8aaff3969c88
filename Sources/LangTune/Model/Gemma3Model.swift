import CLangTuneKernels
import Foundation

/// Gemma 3's extra per-layer weights. Norm weights are the multipliers themselves: a GGUF
/// stores `1 + w` (llama.cpp's converter adds the 1 that transformers' `Gemma3RMSNorm` adds
/// at run time), so they apply as a plain RMSNorm weight.
struct Gemma3LayerNorms: @unchecked Sendable {
    /// Applied to the attention output before the residual add (`post_attention_layernorm`).
    let postAttention: FloatBuffer
    /// Applied to the MLP output before the residual add (`post_feedforward_layernorm`).
    let postFeedForward: FloatBuffer
    /// Per-head RMSNorm of queries and keys, before RoPE (`headDim` weights each).
    let q, k: FloatBuffer
}

/// The places where a Gemma 3 layer departs from a Llama layer, as hooks the shared
/// forward passes (`forward`, `decodeStep`) call; for Llama models each is the Llama step.
extension LlamaModel {
    /// Embedding rows of `tokens` into `x` (`[tokens.count, hidden]`); Gemma multiplies them by
    /// sqrt(hidden), rounded to float32 as transformers' `embed_scale` buffer is.
    func embed(_ tokens: [Int], into x: FloatBuffer) {
        let H = config.hiddenSize
        for (t, id) in tokens.enumerated() {
            embedding.copyRow(min(max(id, 0), config.vocabSize - 1), into: x.pointer + t * H)
        }
        guard config.gemma3 != nil else { return }
        let scale = Float(Double(H).squareRoot())
        for i in 0..<(tokens.count * H) { x.pointer[i] *= scale }
    }

    /// The softmax scale of attention scores.
    var attentionScale: Float {
        if let g = config.gemma3 { return Float(1 / g.queryPreAttnScalar.squareRoot()) }
        return 1 / Float(config.headDim).squareRoot()
    }

    /// How many cache positions (the query's own included) layer `li` attends to: nil for all.
    func attentionWindow(layer li: Int) -> Int? {
        guard let g = config.gemma3, g.isLocal(layer: li) else { return nil }
        return g.slidingWindow
    }

    /// Query and key of one position, ready for attention: Gemma's per-head q/k RMSNorm, then
    /// RoPE with the layer's base (local layers: Gemma's local base).
    func positionQK(_ layer: LlamaLayer, _ li: Int, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
                    position: Int) {
        let hd = config.headDim
        if let norms = layer.gemma {
            for h in 0..<config.numHeads { lt_rmsnorm(q + h * hd, norms.q.pointer, q + h * hd, Int64(hd), config.rmsNormEps) }
            for h in 0..<config.numKVHeads { lt_rmsnorm(k + h * hd, norms.k.pointer, k + h * hd, Int64(hd), config.rmsNormEps) }
        }
        let r = attentionWindow(layer: li) != nil ? (localRope ?? rope) : rope
        r.apply(q, heads: config.numHeads, position: position)
        r.apply(k, heads: config.numKVHeads, position: position)
    }

    /// `x += out` for `rows` rows, Gemma first normalizing `out` with `norm` (its post-attention
    /// or post-MLP norm).
    func addResidual(_ out: FloatBuffer, norm: FloatBuffer?, to x: FloatBuffer, rows: Int) {
        let H = config.hiddenSize
        if let norm {
            for t in 0..<rows { lt_rmsnorm(out.pointer + t * H, norm.pointer, out.pointer + t * H, Int64(H), config.rmsNormEps) }
        }
        for i in 0..<(rows * H) { x.pointer[i] += out.pointer[i] }
    }

    /// The gated activation in place in `g`: SwiGLU, or Gemma's GeGLU with tanh GELU
    /// (transformers' `gelu_pytorch_tanh`), both the tier's kernels.
    func gatedActivation(_ g: FloatBuffer, _ u: FloatBuffer, count n: Int) {
        if config.gemma3 != nil {
            lt_geglu(g.pointer, u.pointer, g.pointer, Int64(n))
        } else {
            lt_swiglu(g.pointer, u.pointer, g.pointer, Int64(n))
        }
    }

    /// Gemma 2's final logit soft-capping, when the config has it.
    func softcapLogits(_ logits: inout [Float]) {
        guard let cap = config.gemma3?.finalLogitSoftcap else { return }
        let c = Float(cap)
        for i in logits.indices { logits[i] = tanhf(logits[i] / c) * c }
    }
}
