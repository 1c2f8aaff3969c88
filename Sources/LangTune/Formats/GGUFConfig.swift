import Foundation

extension GGUFFile {
    /// GGUF `general.architecture` values LangTune runs (Mistral GGUFs say `llama`).
    public static let supportedArchitectures = ["llama", "qwen2", "gemma3"]

    /// The model's hyper-parameters from `{arch}.*` metadata.
    ///
    /// Vocabulary size comes from `{arch}.vocab_size` or the token list;
    /// embeddings are tied when there is no `output.weight`; BOS/EOS come from
    /// `tokenizer.ggml.*` (EOS, then end-of-turn and end-of-message ids when set).
    /// Llama 3 RoPE scaling, which llama.cpp stores as a `rope_freqs.weight`
    /// tensor, is recovered by checking that tensor against the Llama 3 formula.
    public func llamaConfig() throws -> LlamaConfig {
        func fail(_ p: String) -> FormatError { FormatError(file: path, p) }
        guard let arch = metadata["general.architecture"]?.string else { throw fail("missing general.architecture") }
        guard Self.supportedArchitectures.contains(arch) else {
            throw fail("unsupported architecture \"\(arch)\" (supported: \(Self.supportedArchitectures.joined(separator: ", ")))")
        }
        func int(_ key: String) throws -> Int? {
            guard let v = metadata["\(arch).\(key)"] else { return nil }
            if let i = v.int { return i }
            // Some converters write per-layer arrays; accept them when all layers agree.
            if let a = v.intArray, let first = a.first, a.count == v.array?.count, a.allSatisfy({ $0 == first }) { return first }
            throw fail("\(arch).\(key) is \(v), expected an integer")
        }
        func need(_ key: String) throws -> Int {
            guard let v = try int(key) else { throw fail("missing \(arch).\(key)") }
            guard v > 0 else { throw fail("\(arch).\(key) must be positive, got \(v)") }
            return v
        }
        func double(_ key: String) throws -> Double? {
            guard let v = metadata["\(arch).\(key)"] else { return nil }
            guard let d = v.double else { throw fail("\(arch).\(key) is \(v), expected a number") }
            return d
        }
        let hidden = try need("embedding_length")
        let heads = try need("attention.head_count")
        let kvHeads = try int("attention.head_count_kv") ?? heads
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw fail("attention.head_count \(heads) is not a multiple of attention.head_count_kv \(kvHeads)")
        }
        let headDim: Int
        if let k = try int("attention.key_length") {
            headDim = k
        } else {
            guard hidden % heads == 0 else { throw fail("embedding_length \(hidden) is not a multiple of head_count \(heads)") }
            headDim = hidden / heads
        }
        guard headDim > 0, headDim % 2 == 0 else { throw fail("head size \(headDim) must be positive and even") }
        if let v = try int("attention.value_length"), v != headDim {
            throw fail("attention.value_length \(v) differs from key_length \(headDim); not supported")
        }
        if let r = try int("rope.dimension_count"), r != headDim {
            throw fail("rope.dimension_count \(r) differs from the head size \(headDim) (partial RoPE is not supported)")
        }
        let vocab: Int
        if let v = try int("vocab_size") {
            vocab = v
        } else if let tokens = metadata["tokenizer.ggml.tokens"]?.array {
            vocab = tokens.count
        } else {
            throw fail("no \(arch).vocab_size and no tokenizer.ggml.tokens to count")
        }
        guard vocab > 0 else { throw fail("vocabulary size must be positive") }
        let theta = try double("rope.freq_base") ?? 10000
        let scaling = try ropeScaling(arch: arch, headDim: headDim, theta: theta)
        var eos: [Int] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let id = metadata[key]?.int, !eos.contains(id) { eos.append(id) }
        }
        let layers = try need("block_count")
        var gemma3: Gemma3Options?
        if arch == "gemma3" {
            gemma3 = try gemma3Options(arch: arch, hidden: hidden, heads: heads, headDim: headDim, layers: layers)
        }
        var config = LlamaConfig(
            architecture: arch, hiddenSize: hidden, intermediateSize: try need("feed_forward_length"),
            numLayers: layers, numHeads: heads, numKVHeads: kvHeads, headDim: headDim,
            vocabSize: vocab,
            rmsNormEps: Float(try double("attention.layer_norm_rms_epsilon") ?? 1e-5),
            ropeTheta: theta, ropeScaling: scaling,
            maxPositionEmbeddings: try int("context_length") ?? 2048,
            tieWordEmbeddings: tensorInfo("output.weight") == nil,
            attentionBias: arch == "qwen2" || tensorInfo("blk.0.attn_q.bias") != nil,
            bosTokenId: metadata["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenIds: eos, gemma3: gemma3)
        let tokens = metadata["tokenizer.ggml.tokens"]?.array
        for id in config.turnEndTokenIds(id: { text in tokens?.firstIndex { $0.string == text } }) where !config.eosTokenIds.contains(id) {
            config.eosTokenIds.append(id)
        }
        return config
    }

    private func ropeScaling(arch: String, headDim: Int, theta: Double) throws -> RopeScaling? {
        func fail(_ p: String) -> FormatError { FormatError(file: path, p) }
        // Linear scaling as llama.cpp stores it: a type and factor, or the older scale_linear (Gemma 3 applies it
        // to its global layers only, as llama.cpp does).
        func double(_ key: String) throws -> Double? {
            guard let v = metadata["\(arch).\(key)"] else { return nil }
            guard let d = v.double else { throw fail("\(arch).\(key) is \(v), expected a number") }
            return d
        }
        var linear = try double("rope.scale_linear").flatMap { $0 == 1 ? nil : $0 }
        if let type = metadata["\(arch).rope.scaling.type"]?.string, type != "none" {
            guard type == "linear" else {
                throw fail("unsupported RoPE scaling type \"\(type)\" (supported: linear, and Llama 3 scaling stored as rope_freqs.weight)")
            }
            guard let factor = try double("rope.scaling.factor") ?? linear else {
                throw fail("linear RoPE scaling needs \(arch).rope.scaling.factor")
            }
            linear = factor == 1 ? nil : factor
        }
        if let factor = linear {
            guard factor > 0, factor.isFinite else { throw fail("linear RoPE scaling factor must be positive, found \(factor)") }
            guard tensorInfo("rope_freqs.weight") == nil else { throw fail("linear RoPE scaling together with rope_freqs.weight is not supported") }
            return RopeScaling(type: "linear", factor: factor)
        }
        guard let info = tensorInfo("rope_freqs.weight") else { return nil }
        guard info.dtype == .f32, info.elementCount == headDim / 2 else {
            throw fail("rope_freqs.weight should be F32 with \(headDim / 2) values, found \(info.dtype) \(info.shape)")
        }
        let factors = try dequantize(tensor(info))
        if factors.allSatisfy({ $0 == 1 }) { return nil }
        let original = metadata["\(arch).rope.scaling.original_context_length"]?.int ?? 8192
        let candidate = RopeScaling(type: "llama3", factor: Double(factors.max()!), lowFreqFactor: 1, highFreqFactor: 4,
                                    originalMaxPositionEmbeddings: original)
        let expected = llama3RopeFactors(candidate, headDim: headDim, theta: theta)
        for (a, b) in zip(factors, expected) where abs(Double(a) - b) > 1e-3 * b {
            throw fail("rope_freqs.weight does not match Llama 3 RoPE scaling (factor \(candidate.factor), low 1, high 4, original context \(original)); other scalings are not supported")
        }
        return candidate
    }
}

/// The per-frequency divisors llama.cpp's converter stores as `rope_freqs.weight`
/// for Llama 3 RoPE scaling (same formula as transformers' `llama3` rope type).
func llama3RopeFactors(_ s: RopeScaling, headDim: Int, theta: Double) -> [Double] {
    let lowWavelen = Double(s.originalMaxPositionEmbeddings) / s.lowFreqFactor
    let highWavelen = Double(s.originalMaxPositionEmbeddings) / s.highFreqFactor
    return stride(from: 0, to: headDim, by: 2).map { i in
        let freq = 1 / pow(theta, Double(i) / Double(headDim))
        let wavelen = 2 * Double.pi / freq
        if wavelen < highWavelen { return 1 }
        if wavelen > lowWavelen { return s.factor }
        let smooth = (Double(s.originalMaxPositionEmbeddings) / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor)
        return 1 / ((1 - smooth) / s.factor + smooth)
    }
}
