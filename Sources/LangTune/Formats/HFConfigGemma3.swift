import Foundation

/// Gemma 3's `config.json` (`Gemma3ForCausalLM`, `model_type` `gemma3_text`), read and written.
/// transformers 4 spells the RoPE bases `rope_theta` / `rope_local_base_freq`; transformers 5 writes
/// `rope_parameters` per layer type. Both are read; the 4.x spelling is written, which 5.x also reads.
extension HFConfig {
    /// The hyper-parameters of a Gemma 3 text model, with `Gemma3TextConfig`'s defaults for absent
    /// optional fields. Layers must alternate as in every Gemma 3 (every n-th global); attention
    /// soft-capping, bidirectional attention, activations other than tanh GELU, and RoPE scalings other
    /// than `linear` on the global layers are refused rather than run wrongly.
    func gemma3Config(file: String, hidden: Int, heads: Int, kvHeads: Int, headDim: Int) throws -> LlamaConfig {
        func fail(_ p: String) -> FormatError { FormatError(file: file, p) }
        func need(_ v: Int?, _ key: String) throws -> Int { try HFConfig.need(v, key, file: file) }
        let layers = try need(numHiddenLayers, "num_hidden_layers")
        if let a = hiddenActivation ?? hiddenAct, a != "gelu_pytorch_tanh" {
            throw fail("hidden_activation \(a.debugDescription) is not supported for Gemma 3 (only gelu_pytorch_tanh)")
        }
        if attnLogitSoftcapping != nil { throw fail("attention logit soft-capping (attn_logit_softcapping) is not supported") }
        if useBidirectionalAttention == true { throw fail("use_bidirectional_attention is not supported (a causal language model is)") }

        // Layer pattern: every `pattern`-th layer global, from layer_types or the pattern field.
        var pattern = try need(privateSlidingWindowPattern ?? slidingWindowPattern ?? 6, "sliding_window_pattern")
        if let types = layerTypes {
            guard types.count == layers else {
                throw fail("layer_types has \(types.count) entries for \(layers) layers")
            }
            if let bad = types.first(where: { $0 != "sliding_attention" && $0 != "full_attention" }) {
                throw fail("layer type \(bad.debugDescription) is not supported (sliding_attention, full_attention)")
            }
            pattern = (types.firstIndex(of: "full_attention") ?? layers) + 1
            let expected = Gemma3Options(slidingWindow: 1, slidingWindowPattern: pattern, queryPreAttnScalar: 1)
            for (i, t) in types.enumerated() where (t == "sliding_attention") != expected.isLocal(layer: i) {
                throw fail("layer_types does not repeat one pattern (every \(pattern)th layer global): layer \(i) is \(t)")
            }
        }

        // RoPE: one base per layer type; the global layers may be scaled linearly (Gemma 3 4B and up),
        // the sliding-window layers never are (transformers 4 applies `rope_scaling` to the global ones only).
        var globalTheta = ropeTheta ?? 1_000_000, localTheta = ropeLocalBaseFreq ?? 10_000
        var global: [(String, HFRopeScaling?)] = [("rope_scaling", ropeScaling)]
        var local: [(String, HFRopeScaling?)] = []
        switch ropeParameters {
        case .shared(let p)?:
            globalTheta = p.ropeTheta ?? globalTheta
            global.append(("rope_parameters", p))
        case .perLayerType(let m)?:
            guard let full = m["full_attention"], let sliding = m["sliding_attention"] else {
                throw fail("rope_parameters needs full_attention and sliding_attention entries")
            }
            globalTheta = full.ropeTheta ?? globalTheta
            localTheta = sliding.ropeTheta ?? localTheta
            global.append(("rope_parameters.full_attention", full))
            local.append(("rope_parameters.sliding_attention", sliding))
        case nil: break
        }
        for (key, s) in local {
            if let kind = s?.kind, kind != "default" {
                throw fail("\(key) type \(kind.debugDescription) is not supported for Gemma 3 (only default)")
            }
        }
        var scaling: RopeScaling?
        for (key, s) in global {
            switch s?.kind {
            case nil, "default": continue
            case "linear":
                let this = try HFConfig.linearScaling(s, key: key, file: file)
                if let scaling, scaling != this {
                    throw fail("\(key) disagrees with the other RoPE scaling of the global layers (factor \(scaling.factor))")
                }
                scaling = this
            case let kind?:
                throw fail("\(key) type \(kind.debugDescription) is not supported for Gemma 3 (default, linear)")
            }
        }
        guard globalTheta > 0, localTheta > 0 else { throw fail("RoPE bases must be positive") }
        let window = try need(slidingWindow ?? 4096, "sliding_window")
        let scalar = queryPreAttnScalar ?? 256
        guard scalar > 0 else { throw fail("query_pre_attn_scalar must be positive") }
        let options = Gemma3Options(slidingWindow: window, slidingWindowPattern: pattern, localRopeTheta: localTheta,
                                    queryPreAttnScalar: scalar, finalLogitSoftcap: finalLogitSoftcapping)
        return LlamaConfig(
            architecture: "gemma3", hiddenSize: hidden,
            intermediateSize: try need(intermediateSize, "intermediate_size"),
            numLayers: layers, numHeads: heads, numKVHeads: kvHeads, headDim: headDim,
            vocabSize: try need(vocabSize, "vocab_size"),
            rmsNormEps: Float(rmsNormEps ?? 1e-6), ropeTheta: globalTheta, ropeScaling: scaling,
            maxPositionEmbeddings: try need(maxPositionEmbeddings ?? 131_072, "max_position_embeddings"),
            tieWordEmbeddings: tieWordEmbeddings ?? true, attentionBias: attentionBias ?? false,
            bosTokenId: bosTokenId ?? 2, eosTokenIds: eosTokenId?.values ?? [1], gemma3: options)
    }
}

extension HFConfig {
    /// The text model of a `Gemma3ForConditionalGeneration` config.json (Gemma 3 4B and up): its
    /// `text_config`, read as a `Gemma3ForCausalLM`, with the outer BOS/EOS ids and dtype where the text
    /// config has none. LangTune runs the language model alone; the vision tower is not loaded.
    static func gemma3TextModel(_ data: Data, outer: HFConfig, file: String) throws -> HFConfig {
        struct Outer: Decodable { var text_config: HFConfig? }
        let text: HFConfig?
        do { text = try JSONDecoder().decode(Outer.self, from: data).text_config } catch {
            throw FormatError(file: file, "not a valid config.json: text_config: \(describeDecodingError(error))")
        }
        guard var t = text else { throw FormatError(file: file, "Gemma3ForConditionalGeneration without a text_config") }
        if let type = t.modelType, type != "gemma3_text" {
            throw FormatError(file: file, "text_config has model_type \(type.debugDescription); Gemma 3's text model is gemma3_text")
        }
        t.architectures = ["Gemma3ForCausalLM"]
        t.modelType = "gemma3_text"
        t.bosTokenId = t.bosTokenId ?? outer.bosTokenId
        t.eosTokenId = t.eosTokenId ?? outer.eosTokenId
        t.torchDtype = t.torchDtype ?? outer.torchDtype
        t.dtype = t.dtype ?? outer.dtype
        t.textModelOf = "Gemma3ForConditionalGeneration"
        return t
    }

    /// The name a `Gemma3ForConditionalGeneration` tensor has in the text model, or nil for the vision
    /// tower and projector. Checkpoints on the Hub, and transformers 5.24's `save_pretrained`, hold
    /// `language_model.model.*` (and `language_model.lm_head.*` when untied); transformers 5 names them
    /// `model.language_model.*` and `lm_head.*` in memory.
    static func textModelTensorName(_ name: String) -> String? {
        for (prefix, replacement) in [("model.language_model.", "model."), ("language_model.model.", "model."),
                                      ("language_model.lm_head.", "lm_head.")] where name.hasPrefix(prefix) {
            return replacement + name.dropFirst(prefix.count)
        }
        return name.hasPrefix("lm_head.") ? name : nil
    }

    /// A `linear` RoPE scaling entry (`rope_scaling` or one of `rope_parameters`), its factor checked.
    static func linearScaling(_ s: HFRopeScaling?, key: String, file: String) throws -> RopeScaling {
        guard let factor = s?.factor, factor > 0, factor.isFinite else {
            throw FormatError(file: file, "\(key) of type linear needs a positive factor")
        }
        return RopeScaling(type: "linear", factor: factor)
    }
}

extension LlamaConfig {
    /// Gemma 3's `config.json` as transformers 4.5x writes it for `Gemma3ForCausalLM`.
    func gemma3HFConfigJSON(_ g: Gemma3Options, torchDtype: String) -> JSONText {
        let eps = Double("\(rmsNormEps)") ?? Double(rmsNormEps)
        var m: [(String, JSONText)] = [
            ("architectures", .array([.string("Gemma3ForCausalLM")])),
            ("attention_bias", .bool(attentionBias)),
            ("attention_dropout", .double(0)),
            ("attn_logit_softcapping", .null),
            ("bos_token_id", bosTokenId.map { .int($0) } ?? .null),
        ]
        switch eosTokenIds.count {
        case 0: m.append(("eos_token_id", .null))
        case 1: m.append(("eos_token_id", .int(eosTokenIds[0])))
        default: m.append(("eos_token_id", .array(eosTokenIds.map { .int($0) })))
        }
        m += [
            ("final_logit_softcapping", g.finalLogitSoftcap.map { .double($0) } ?? .null),
            ("head_dim", .int(headDim)),
            ("hidden_activation", .string("gelu_pytorch_tanh")),
            ("hidden_size", .int(hiddenSize)),
            ("initializer_range", .double(0.02)),
            ("intermediate_size", .int(intermediateSize)),
            ("layer_types", .array((0..<numLayers).map { .string(g.isLocal(layer: $0) ? "sliding_attention" : "full_attention") })),
            ("max_position_embeddings", .int(maxPositionEmbeddings)),
            ("model_type", .string("gemma3_text")),
            ("num_attention_heads", .int(numHeads)),
            ("num_hidden_layers", .int(numLayers)),
            ("num_key_value_heads", .int(numKVHeads)),
            // An integer where it is one: transformers 5 validates this field as an int.
            ("query_pre_attn_scalar", g.queryPreAttnScalar == g.queryPreAttnScalar.rounded() && abs(g.queryPreAttnScalar) < 1e15
                ? .int(Int(g.queryPreAttnScalar)) : .double(g.queryPreAttnScalar)),
            ("rms_norm_eps", .double(eps)),
            ("rope_local_base_freq", .double(g.localRopeTheta)),
            ("rope_scaling", ropeScaling.map { .object([("factor", .double($0.factor)), ("rope_type", .string($0.type))]) } ?? .null),
            ("rope_theta", .double(ropeTheta)),
            ("sliding_window", .int(g.slidingWindow)),
            ("tie_word_embeddings", .bool(tieWordEmbeddings)),
            ("torch_dtype", .string(torchDtype)),
            ("use_bidirectional_attention", .bool(false)),
            ("use_cache", .bool(true)),
            ("vocab_size", .int(vocabSize)),
        ]
        return .object(m)
    }

    /// Names of Gemma 3's RMSNorm weights. transformers stores `w` and multiplies by `1 + w`;
    /// LangTune, as a GGUF, holds the multiplier `1 + w`.
    static func isGemmaNormWeight(_ name: String) -> Bool {
        name == "model.norm.weight" || name.hasSuffix("layernorm.weight") || name.hasSuffix(".q_norm.weight")
            || name.hasSuffix(".k_norm.weight")
    }
}
