import Foundation

extension ModelExporter {
    /// ggml `general.file_type` (llama_ftype) for a model whose weights are mostly `dtype`.
    static func ggufFileType(_ dtype: DType) -> UInt32? {
        switch dtype {
        case .f32: return 0
        case .f16: return 1
        case .q8_0: return 7
        case .bf16: return 32
        default: return nil
        }
    }

    /// Writes one GGUF file as llama.cpp's converter lays it out: `general.architecture`
    /// `llama` (Llama, Mistral), `qwen2` or `gemma3`, the `{arch}.*` hyper-parameters, the
    /// tokenizer (copied from a GGUF source, built from tokenizer.json otherwise), the
    /// chat template, and the tensors under llama.cpp names with q/k rows in its order
    /// for `llama`. 2-D weights (token_embd included) are stored as `dtype` (F32, F16,
    /// BF16 or Q8_0; Q8_0 falls back to F16 for rows that are not whole blocks of 32),
    /// norms and biases as F32; Llama 3 RoPE scaling becomes `rope_freqs.weight`.
    public func writeGGUF(to path: String, dtype: DType) throws {
        guard let fileType = Self.ggufFileType(dtype) else {
            throw FormatError(file: path, "a GGUF export stores F32, F16, BF16 or Q8_0 weights, not \(dtype)")
        }
        let c = files.config
        let arch = c.gemma3 != nil ? "gemma3" : c.architecture == "qwen2" ? "qwen2" : "llama"
        var w = try GGUFWriter(alignment: 32)
        w.set("general.architecture", .string(arch))
        w.set("general.type", .string("model"))
        let sourceMeta: [String: GGUFValue]?
        if case .gguf(let m, _) = files.tokenizer { sourceMeta = m } else { sourceMeta = nil }
        let name = sourceMeta?["general.name"]?.string
            ?? ((files.path as NSString).lastPathComponent as NSString).deletingPathExtension
        w.set("general.name", .string(name))
        w.set("general.alignment", .u32(32))
        w.set("general.file_type", .u32(fileType))
        if dtype == .q8_0 { w.set("general.quantization_version", .u32(2)) }
        w.set("\(arch).vocab_size", .u32(UInt32(c.vocabSize)))
        w.set("\(arch).context_length", .u32(UInt32(c.maxPositionEmbeddings)))
        w.set("\(arch).embedding_length", .u32(UInt32(c.hiddenSize)))
        w.set("\(arch).block_count", .u32(UInt32(c.numLayers)))
        w.set("\(arch).feed_forward_length", .u32(UInt32(c.intermediateSize)))
        w.set("\(arch).attention.head_count", .u32(UInt32(c.numHeads)))
        w.set("\(arch).attention.head_count_kv", .u32(UInt32(c.numKVHeads)))
        if c.headDim * c.numHeads != c.hiddenSize {
            w.set("\(arch).attention.key_length", .u32(UInt32(c.headDim)))
            w.set("\(arch).attention.value_length", .u32(UInt32(c.headDim)))
        }
        w.set("\(arch).rope.dimension_count", .u32(UInt32(c.headDim)))
        w.set("\(arch).rope.freq_base", .f32(Float(c.ropeTheta)))
        w.set("\(arch).attention.layer_norm_rms_epsilon", .f32(c.rmsNormEps))
        if let s = c.ropeScaling, s.type == "linear" {
            w.set("\(arch).rope.scaling.type", .string("linear"))
            w.set("\(arch).rope.scaling.factor", .f32(Float(s.factor)))
        } else if let s = c.ropeScaling {
            w.set("\(arch).rope.scaling.original_context_length", .u32(UInt32(s.originalMaxPositionEmbeddings)))
        }

        if c.gemma3 != nil { try copyGemma3Metadata(into: &w) }

        // Tokenizer
        switch files.tokenizer {
        case .gguf(let m, let file):
            guard let keys = try? GGUFFile(path: file).metadataKeys else {
                throw FormatError(file: file, "cannot re-read the source's metadata")
            }
            for key in keys where key.hasPrefix("tokenizer.") && key != "tokenizer.chat_template" { w.set(key, m[key]!) }
        case .huggingFace(let json, let config, let file):
            var eos: Int?
            for (key, value) in try TokenizerExport.ggufMetadata(tokenizerJSON: json, tokenizerConfigJSON: config,
                                                                  file: file, vocabSize: c.vocabSize,
                                                                  architecture: arch) {
                w.set(key, value)
                if key == "tokenizer.ggml.eos_token_id" { eos = value.int }
            }
            // config.json may list more stop ids than the tokenizer's EOS (Llama 3: <|end_of_text|>
            // and <|eot_id|>); GGUF readers also stop at the end-of-turn and end-of-message ids.
            let more = c.eosTokenIds.filter { $0 != eos }
            for (key, id) in zip(["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"], more) {
                w.set(key, .u32(UInt32(id)))
            }
        }
        if let t = files.chatTemplate { w.set("tokenizer.chat_template", .string(t)) }

        // Tensors, in llama.cpp's order: embeddings, (rope factors), layers, output norm, output.
        func fail(_ e: FormatError) -> FormatError { FormatError(file: path, e.problem) }
        let exporter = self
        let permute = arch == "llama"
        for (hf, shape) in exportedTensorNames {
            guard let gg = GGUFTensorNames.ggufName(forHF: hf, architecture: arch) else {
                throw FormatError(file: path, "tensor \"\(hf)\" has no llama.cpp name")
            }
            let is2D = shape.count == 2
            var type: DType = is2D ? dtype : .f32
            if type == .q8_0 && shape.last! % 32 != 0 { type = .f16 }
            let heads: Int? = !permute ? nil
                : hf.contains(".self_attn.q_proj.") ? c.numHeads : hf.contains(".self_attn.k_proj.") ? c.numKVHeads : nil
            do {
                try w.addTensor(name: gg, shape: shape, dtype: type) {
                    let bytes = try Self.encode(try exporter.values(hf), as: type, name: hf)
                    guard let heads else { return bytes }
                    let t = WeightTensor(name: gg, shape: shape, dtype: type, storage: ByteStorage(copying: bytes),
                                         offset: 0, byteCount: bytes.count)
                    let p = try GGUFTensorNames.permuteQK(t, heads: heads)
                    return Array(p.bytes)
                }
            } catch let e as FormatError { throw fail(e) }
            if hf == "model.embed_tokens.weight", let s = c.ropeScaling, s.type == "llama3" {
                let factors = llama3RopeFactors(s, headDim: c.headDim, theta: c.ropeTheta).map(Float.init)
                do { try w.addTensor(name: "rope_freqs.weight", shape: [factors.count], values: factors, as: .f32) }
                catch let e as FormatError { throw fail(e) }
            }
        }
        try w.write(to: path)
    }

    /// Gemma 3's own keys (sliding window, local RoPE base, …): copied from a GGUF source (the config
    /// keeps what it uses, not every key llama.cpp reads), written from the config otherwise. The
    /// layer pattern, local RoPE base and query scalar are written only where they differ from what
    /// a reader assumes without them (llama.cpp reads none of them).
    private func copyGemma3Metadata(into w: inout GGUFWriter) throws {
        guard case .gguf(let m, let file) = files.tokenizer else {
            guard let g = files.config.gemma3 else { return }
            let c = files.config
            w.set("gemma3.attention.sliding_window", .u32(UInt32(g.slidingWindow)))
            if g.slidingWindowPattern != 6 { w.set("gemma3.attention.sliding_window_pattern", .u32(UInt32(g.slidingWindowPattern))) }
            if g.localRopeTheta != 10_000 { w.set("gemma3.rope.local_freq_base", .f32(Float(g.localRopeTheta))) }
            if g.queryPreAttnScalar != Double(c.numLayers == 62 ? c.hiddenSize / c.numHeads : c.headDim) {
                w.set("gemma3.attention.query_pre_attn_scalar", .f32(Float(g.queryPreAttnScalar)))
            }
            if let cap = g.finalLogitSoftcap { w.set("gemma3.final_logit_softcapping", .f32(Float(cap))) }
            return
        }
        guard let keys = try? GGUFFile(path: file).metadataKeys else {
            throw FormatError(file: file, "cannot re-read the source's metadata")
        }
        let written = Set(w.metadataKeys)
        for key in keys where key.hasPrefix("gemma3.") && !written.contains(key) { w.set(key, m[key]!) }
    }
}
