import Foundation

/// What a Gemma 3 text model adds to the Llama-family hyper-parameters.
///
/// Gemma 3 interleaves sliding-window ("local") and global attention layers, each with its own
/// RoPE base, normalizes queries and keys per head, scales attention by
/// `queryPreAttnScalar^-1/2` instead of `headDim^-1/2`, multiplies the embeddings by
/// `sqrt(hiddenSize)` and uses GeGLU (tanh GELU) in the MLP.
public struct Gemma3Options: Sendable, Equatable, Codable {
    /// Keys a local layer attends to: the query's own position and the `slidingWindow - 1` before it.
    public var slidingWindow: Int
    /// Every `slidingWindowPattern`-th layer (1-based) is global; the others are local.
    public var slidingWindowPattern: Int
    /// RoPE base of the local layers (the config's `ropeTheta` is the global layers').
    public var localRopeTheta: Double
    /// Attention scores are scaled by `queryPreAttnScalar^-1/2`.
    public var queryPreAttnScalar: Double
    /// `tanh(logits / cap) * cap` on the output logits when set (Gemma 2; Gemma 3 has none).
    public var finalLogitSoftcap: Double?

    public init(slidingWindow: Int, slidingWindowPattern: Int = 6, localRopeTheta: Double = 10_000,
                queryPreAttnScalar: Double, finalLogitSoftcap: Double? = nil) {
        self.slidingWindow = slidingWindow
        self.slidingWindowPattern = slidingWindowPattern
        self.localRopeTheta = localRopeTheta
        self.queryPreAttnScalar = queryPreAttnScalar
        self.finalLogitSoftcap = finalLogitSoftcap
    }

    /// Whether layer `index` (0-based) attends only to its sliding window.
    public func isLocal(layer index: Int) -> Bool { (index + 1) % slidingWindowPattern != 0 }
}

extension GGUFFile {
    /// Gemma 3's options from `gemma3.*` metadata. The GGUF has no query_pre_attn_scalar and
    /// no layer pattern: as llama.cpp, the scalar is the head size (27B: hidden / heads, its 62
    /// layers tell it apart) and every sixth layer is global.
    func gemma3Options(arch: String, hidden: Int, heads: Int, headDim: Int, layers: Int) throws -> Gemma3Options {
        func fail(_ p: String) -> FormatError { FormatError(file: path, p) }
        guard let window = metadata["\(arch).attention.sliding_window"]?.int, window > 0 else {
            throw fail("\(arch).attention.sliding_window is missing or not a positive integer")
        }
        if metadata["\(arch).attn_logit_softcapping"] != nil {
            throw fail("attention logit soft-capping (\(arch).attn_logit_softcapping) is not supported")
        }
        var pattern = 6
        if let p = metadata["\(arch).attention.sliding_window_pattern"] {
            guard let i = p.int, i > 0 else { throw fail("\(arch).attention.sliding_window_pattern is not a positive integer") }
            pattern = i
        }
        let scalar = metadata["\(arch).attention.query_pre_attn_scalar"]?.double
            ?? Double(layers == 62 ? hidden / heads : headDim)
        return Gemma3Options(slidingWindow: window, slidingWindowPattern: pattern,
                             localRopeTheta: metadata["\(arch).rope.local_freq_base"]?.double ?? 10_000,
                             queryPreAttnScalar: scalar,
                             finalLogitSoftcap: metadata["\(arch).final_logit_softcapping"]?.double)
    }
}

extension LlamaConfig {
    /// Ids beyond the files' EOS that end a turn, found by text with `id`: Gemma's `<end_of_turn>`,
    /// which a GGUF does not name as EOT (llama.cpp also finds it by its text) and a config.json need
    /// not list. The GGUF loader adds them to `eosTokenIds`; `LanguageModel.stopTokenIds` adds them for
    /// every source.
    func turnEndTokenIds(id: (String) -> Int?) -> [Int] {
        guard gemma3 != nil, let turnEnd = id("<end_of_turn>") else { return [] }
        return [turnEnd]
    }
}
