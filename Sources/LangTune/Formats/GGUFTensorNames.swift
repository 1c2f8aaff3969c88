/// llama.cpp tensor names ↔ Hugging Face names, and llama.cpp's Q/K row order.
public enum GGUFTensorNames {
    private static let global: [(String, String)] = [
        ("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head"),
    ]
    private static let perLayer: [(String, String)] = [
        ("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"), ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj"),
    ]

    /// Gemma 3 norms around attention and MLP, and per-head q/k norms. Its `ffn_norm` is the
    /// norm before the MLP, which transformers calls `pre_feedforward_layernorm` (Llama's
    /// `post_attention_layernorm` is Gemma's norm of the attention output).
    private static let gemma3PerLayer: [(String, String)] = [
        ("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"), ("attn_k_norm", "self_attn.k_norm"),
        ("post_attention_norm", "post_attention_layernorm"), ("ffn_norm", "pre_feedforward_layernorm"),
        ("post_ffw_norm", "post_feedforward_layernorm"),
        ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj"),
    ]

    private static func layerNames(_ architecture: String) -> [(String, String)] {
        architecture == "gemma3" ? gemma3PerLayer : perLayer
    }

    /// The HF name of a llama.cpp tensor (`blk.3.attn_q.weight` →
    /// `model.layers.3.self_attn.q_proj.weight`), or nil for names with no HF counterpart.
    public static func hfName(forGGUF name: String, architecture: String = "llama") -> String? {
        let perLayer = layerNames(architecture)
        guard let (stem, suffix) = splitSuffix(name) else { return nil }
        if let m = global.first(where: { $0.0 == stem }) { return m.1 + suffix }
        let parts = stem.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
              let m = perLayer.first(where: { $0.0 == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(m.1)\(suffix)"
    }

    /// The llama.cpp name of an HF tensor, or nil.
    public static func ggufName(forHF name: String, architecture: String = "llama") -> String? {
        let perLayer = layerNames(architecture)
        guard let (stem, suffix) = splitSuffix(name) else { return nil }
        if let m = global.first(where: { $0.1 == stem }) { return m.0 + suffix }
        guard stem.hasPrefix("model.layers.") else { return nil }
        let rest = stem.dropFirst("model.layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0,
              String(layer) == rest[..<dot] else { return nil }
        let module = String(rest[rest.index(after: dot)...])
        guard let m = perLayer.first(where: { $0.1 == module }) else { return nil }
        return "blk.\(layer).\(m.0)\(suffix)"
    }

    private static func splitSuffix(_ name: String) -> (String, String)? {
        for s in [".weight", ".bias"] where name.hasSuffix(s) {
            return (String(name.dropLast(s.count)), s)
        }
        return nil
    }

    /// Puts the rows of a q/k projection (weight `[heads·hd, in]` or bias
    /// `[heads·hd]`) from llama.cpp's order back into HF order: GGUF row
    /// h·hd + 2i + j is HF row h·hd + j·hd/2 + i. Rows are moved as raw bytes,
    /// so any dtype works (quantized blocks never straddle rows).
    public static func unpermuteQK(_ t: WeightTensor, heads: Int) throws -> WeightTensor {
        try permuteRows(t, heads: heads) { h, hd, i, j in (h * hd + j * hd / 2 + i, h * hd + 2 * i + j) }
    }

    /// The inverse of `unpermuteQK`: HF row order → llama.cpp's (for GGUF export).
    public static func permuteQK(_ t: WeightTensor, heads: Int) throws -> WeightTensor {
        try permuteRows(t, heads: heads) { h, hd, i, j in (h * hd + 2 * i + j, h * hd + j * hd / 2 + i) }
    }

    /// Builds a tensor whose row `map(...).0` is the source's row `map(...).1`.
    private static func permuteRows(_ t: WeightTensor, heads: Int,
                                    _ map: (_ h: Int, _ hd: Int, _ i: Int, _ j: Int) -> (Int, Int)) throws -> WeightTensor {
        func fail(_ p: String) -> FormatError { FormatError(file: t.name, p) }
        guard let rows = t.shape.first, t.shape.count <= 2, heads > 0 else {
            throw fail("cannot permute q/k rows of shape \(t.shape)")
        }
        guard rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw fail("\(rows) rows do not split into \(heads) heads of even size")
        }
        if t.shape.count == 1 && t.dtype.isQuantized { throw fail("cannot permute a quantized vector") }
        guard rows > 0, t.byteCount % rows == 0,
              t.offset >= 0, t.offset <= t.storage.count, t.byteCount <= t.storage.count - t.offset else {
            throw fail("\(t.byteCount) bytes do not split into \(rows) rows")
        }
        let rowBytes = t.byteCount / rows
        let hd = rows / heads
        let out = UnsafeMutableRawPointer.allocate(byteCount: max(t.byteCount, 1), alignment: 64)
        let src = t.storage.base + t.offset
        for h in 0..<heads {
            for i in 0..<(hd / 2) {
                for j in 0..<2 {
                    let (dstRow, srcRow) = map(h, hd, i, j)
                    (out + dstRow * rowBytes).copyMemory(from: src + srcRow * rowBytes, byteCount: rowBytes)
                }
            }
        }
        let storage = ByteStorage(base: UnsafeRawPointer(out), count: t.byteCount) { p, _ in
            UnsafeMutableRawPointer(mutating: p).deallocate()
        }
        return WeightTensor(name: t.name, shape: t.shape, dtype: t.dtype, storage: storage, offset: 0, byteCount: t.byteCount)
    }
}
