import Foundation

extension LlamaConfig {
    /// `architectures[0]` and `model_type` of this architecture in transformers.
    var hfArchitecture: (String, String) {
        switch architecture {
        case "qwen2": return ("Qwen2ForCausalLM", "qwen2")
        case "mistral": return ("MistralForCausalLM", "mistral")
        default: return ("LlamaForCausalLM", "llama")
        }
    }

    /// A transformers `config.json` for this model; `torchDtype` is `float32`, `float16` or `bfloat16`.
    ///
    /// Written in the spelling transformers 4.x and 5.x both read (`rope_theta`,
    /// `rope_scaling`, `torch_dtype`). Mistral's sliding window is not part of
    /// `LlamaConfig` (LangTune attends to the whole context), so it is written as null.
    func hfConfigJSON(torchDtype: String) -> JSONText {
        if let g = gemma3 { return gemma3HFConfigJSON(g, torchDtype: torchDtype) }
        let (archName, modelType) = hfArchitecture
        // Shortest decimal that reads back as the same Float (1e-05, not 9.999999747378752e-06).
        let eps = Double("\(rmsNormEps)") ?? Double(rmsNormEps)
        var m: [(String, JSONText)] = [("architectures", .array([.string(archName)]))]
        if architecture != "qwen2" { m.append(("attention_bias", .bool(attentionBias))) }
        m.append(("attention_dropout", .double(0)))
        m.append(("bos_token_id", bosTokenId.map { .int($0) } ?? .null))
        switch eosTokenIds.count {
        case 0: m.append(("eos_token_id", .null))
        case 1: m.append(("eos_token_id", .int(eosTokenIds[0])))
        default: m.append(("eos_token_id", .array(eosTokenIds.map { .int($0) })))
        }
        m += [
            ("head_dim", .int(headDim)),
            ("hidden_act", .string("silu")),
            ("hidden_size", .int(hiddenSize)),
            ("initializer_range", .double(0.02)),
            ("intermediate_size", .int(intermediateSize)),
            ("max_position_embeddings", .int(maxPositionEmbeddings)),
        ]
        if architecture == "qwen2" { m.append(("max_window_layers", .int(numLayers))) }
        if architecture == "llama" { m.append(("mlp_bias", .bool(false))) }
        m.append(("model_type", .string(modelType)))
        m += [
            ("num_attention_heads", .int(numHeads)),
            ("num_hidden_layers", .int(numLayers)),
            ("num_key_value_heads", .int(numKVHeads)),
        ]
        if architecture == "llama" { m.append(("pretraining_tp", .int(1))) }
        m.append(("rms_norm_eps", .double(eps)))
        if let s = ropeScaling, s.type == "linear" {
            m.append(("rope_scaling", .object([("factor", .double(s.factor)), ("rope_type", .string("linear"))])))
        } else if let s = ropeScaling {
            m.append(("rope_scaling", .object([
                ("factor", .double(s.factor)), ("high_freq_factor", .double(s.highFreqFactor)),
                ("low_freq_factor", .double(s.lowFreqFactor)),
                ("original_max_position_embeddings", .int(s.originalMaxPositionEmbeddings)),
                ("rope_type", .string(s.type)),
            ])))
        } else {
            m.append(("rope_scaling", .null))
        }
        m.append(("rope_theta", .double(ropeTheta)))
        if architecture != "llama" { m.append(("sliding_window", .null)) }
        m.append(("tie_word_embeddings", .bool(tieWordEmbeddings)))
        m.append(("torch_dtype", .string(torchDtype)))
        m.append(("use_cache", .bool(true)))
        if architecture == "qwen2" { m.append(("use_sliding_window", .bool(false))) }
        m.append(("vocab_size", .int(vocabSize)))
        return .object(m)
    }
}

extension ModelExporter {
    static func torchName(_ dtype: DType) -> String? {
        switch dtype {
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        default: return nil
        }
    }

    /// Writes a Hugging Face model folder (created if missing): `config.json`,
    /// `model.safetensors` (HF tensor names, `lm_head` only when untied, all in
    /// `dtype`), `generation_config.json` and the tokenizer files. Each file is
    /// replaced atomically.
    ///
    /// With `quantization`, the targeted projections are written as bitsandbytes NF4 layers
    /// (`weight` packed codes, `weight.absmax`, `weight.quant_map`, `weight.nested_absmax`,
    /// `weight.nested_quant_map`, `weight.quant_state.bitsandbytes__nf4`) and `config.json` gets
    /// the `quantization_config` transformers needs to load them with bitsandbytes.
    public func writeHF(to dir: String, dtype: DType, quantization: FrozenQuantization? = nil) throws {
        guard let torchDtype = Self.torchName(dtype) else {
            throw FormatError(file: dir, "a Hugging Face export stores F32, F16 or BF16 weights, not \(dtype)")
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), !isDir.boolValue {
            throw FormatError(file: dir, "exists and is not a folder")
        }
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw FormatError(file: dir, "cannot create the folder: \(error.localizedDescription)")
        }
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        let c = files.config

        // Tokenizer files first: a tokenizer that cannot be exported stops before the big write.
        var extra: [(String, [UInt8])] = []
        switch files.tokenizer {
        case .huggingFace(let json, let config, let file):
            extra.append(("tokenizer.json", Array(json)))
            if let config { extra.append(("tokenizer_config.json", Array(config))) }
            let source = (file as NSString).deletingLastPathComponent
            for name in ["special_tokens_map.json", "chat_template.jinja", "chat_template.json", "generation_config.json"] {
                let p = (source as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: p) { extra.append((name, Array(try readFile(p)))) }
            }
        case .gguf(let metadata, let file):
            let (json, config) = try TokenizerExport.huggingFaceFiles(
                ggufMetadata: metadata, file: file, chatTemplate: files.chatTemplate, modelMaxLength: c.maxPositionEmbeddings)
            extra.append(("tokenizer.json", json))
            extra.append(("tokenizer_config.json", config))
        }
        if !extra.contains(where: { $0.0 == "generation_config.json" }) {
            extra.append(("generation_config.json", generationConfigJSON().serialized()))
        }

        var st = SafetensorsStreamWriter(metadata: ["format": "pt"])
        for (name, shape) in exportedTensorNames {
            let exporter = self
            do {
                if let quantization, shape.count == 2, Self.isTarget(name, quantization) {
                    // Quantized now: the state tensor's bytes hold the double-quantization offset, and the
                    // stream writer needs every tensor's size up front. NF4 is an eighth of the float32 size.
                    let q = NF4Tensor.quantize(try exporter.values(name), shape: shape, doubleQuant: quantization.doubleQuant,
                                               threads: threads)
                    try Self.addNF4(&st, name: name, q, dtypeName: torchDtype)
                } else if c.gemma3 != nil, LlamaConfig.isGemmaNormWeight(name) {
                    // transformers adds the 1 back at run time (as its GGUF loader, which subtracts it).
                    try st.addTensor(name: name, shape: shape, dtype: dtype) {
                        try Self.encode(try exporter.values(name).map { $0 - 1 }, as: dtype, name: name)
                    }
                } else {
                    try st.addTensor(name: name, shape: shape, dtype: dtype) { try Self.encode(try exporter.values(name), as: dtype, name: name) }
                }
            } catch let e as FormatError {
                throw FormatError(file: path("model.safetensors"), e.problem)
            }
        }
        try st.write(to: path("model.safetensors"))
        var config = c.hfConfigJSON(torchDtype: torchDtype)
        if let quantization, case .object(var members) = config {
            members.append(("quantization_config", Self.bitsAndBytesConfig(quantization, computeDtype: torchDtype)))
            config = .object(members)
        }
        try AtomicFileWriter.write(bytes: config.serialized(), to: path("config.json"))
        for (name, bytes) in extra { try AtomicFileWriter.write(bytes: bytes, to: path(name)) }
    }

    static func isTarget(_ name: String, _ q: FrozenQuantization) -> Bool {
        q.targets.contains { name.hasSuffix(".\($0.rawValue).weight") }
    }

    /// bitsandbytes' state dict of one 4-bit layer (`Linear4bit._save_to_state_dict`,
    /// `QuantState.as_dict(packed=True)`). The packed codes are written as `[count / 2, 1]` uint8.
    static func addNF4(_ st: inout SafetensorsStreamWriter, name: String, _ q: NF4Tensor, dtypeName: String) throws {
        let shape = q.shape
        func f32(_ a: [Float]) -> [UInt8] { a.withUnsafeBytes { Array($0) } }
        try st.addTensor(name: name, shape: [q.packed.count, 1], dtype: .u8) { q.packed }
        try st.addTensor(name: name + ".quant_map", shape: [16], dtype: .f32) { f32(BitsAndBytes.nf4Code) }
        var state: [(String, JSONText)] = [("quant_type", .string("nf4")), ("blocksize", .int(q.blocksize)), ("dtype", .string(dtypeName)),
                                           ("shape", .array(shape.map { .int($0) }))]
        switch q.scales {
        case .double(let codes, let nested, let offset, let nestedBlocksize):
            try st.addTensor(name: name + ".absmax", shape: [codes.count], dtype: .u8) { codes }
            try st.addTensor(name: name + ".nested_absmax", shape: [nested.count], dtype: .f32) { f32(nested) }
            try st.addTensor(name: name + ".nested_quant_map", shape: [256], dtype: .f32) { f32(BitsAndBytes.dynamicMap) }
            state += [("nested_blocksize", .int(nestedBlocksize)), ("nested_dtype", .string("float32")),
                      ("nested_offset", .double(Double(offset)))]
        case .plain(let absmax):
            try st.addTensor(name: name + ".absmax", shape: [absmax.count], dtype: .f32) { f32(absmax) }
        }
        let json = Array(Self.pythonJSON(.object(state)).utf8)
        try st.addTensor(name: name + ".quant_state.bitsandbytes__nf4", shape: [json.count], dtype: .u8) { json }
    }

    /// `json.dumps` spelling: `{"a": 1, "b": [1, 2]}`.
    static func pythonJSON(_ v: JSONText) -> String {
        switch v {
        case .object(let m): return "{" + m.map { "\"\($0.0)\": " + pythonJSON($0.1) }.joined(separator: ", ") + "}"
        case .array(let a): return "[" + a.map(pythonJSON).joined(separator: ", ") + "]"
        default: return String(decoding: v.serialized(indent: 0), as: UTF8.self)
        }
    }

    static func bitsAndBytesConfig(_ q: FrozenQuantization, computeDtype: String) -> JSONText {
        .object([
            ("_load_in_4bit", .bool(true)), ("_load_in_8bit", .bool(false)),
            ("bnb_4bit_compute_dtype", .string(computeDtype)), ("bnb_4bit_quant_storage", .string("uint8")),
            ("bnb_4bit_quant_type", .string("nf4")), ("bnb_4bit_use_double_quant", .bool(q.doubleQuant)),
            ("llm_int8_enable_fp32_cpu_offload", .bool(false)), ("llm_int8_has_fp16_weight", .bool(false)),
            ("llm_int8_skip_modules", .null), ("llm_int8_threshold", .double(6)),
            ("load_in_4bit", .bool(true)), ("load_in_8bit", .bool(false)), ("quant_method", .string("bitsandbytes")),
        ])
    }

    /// generation_config.json from the config's BOS/EOS and the source's sampling defaults.
    func generationConfigJSON() -> JSONText {
        let c = files.config
        var m: [(String, JSONText)] = []
        m.append(("bos_token_id", c.bosTokenId.map { .int($0) } ?? .null))
        let g = files.generationDefaults
        if let t = g?.temperature { m.append(("do_sample", .bool(t > 0))) }
        let eos = c.eosTokenIds + (g?.eosTokenIds ?? []).filter { !c.eosTokenIds.contains($0) }
        m.append(("eos_token_id", eos.count == 1 ? .int(eos[0]) : eos.isEmpty ? .null : .array(eos.map { .int($0) })))
        if let p = g?.repetitionPenalty { m.append(("repetition_penalty", .double(p))) }
        if let t = g?.temperature, t > 0 { m.append(("temperature", .double(t))) }
        if let k = g?.topK { m.append(("top_k", .int(k))) }
        if let p = g?.topP { m.append(("top_p", .double(p))) }
        return .object(m)
    }
}
