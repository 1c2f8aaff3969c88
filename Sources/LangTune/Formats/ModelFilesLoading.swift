import Foundation

/// Tensors of one element type in a model, for `inspect`.
public struct DTypeUsage: Sendable, Equatable {
    public var tensors: Int
    public var elements: Int
    public var bytes: Int
}

extension ModelFiles {
    /// Loads a model: a `.gguf` file, or a folder with `config.json`,
    /// `model.safetensors` or `model.safetensors.index.json`, `tokenizer.json`,
    /// and optionally `tokenizer_config.json`, `chat_template.jinja` and
    /// `generation_config.json`. Without a chat template, a family LangTune knows (Gemma 3) gets its
    /// published one (`BuiltInChatTemplates`).
    ///
    /// Checks that every tensor the config requires is present with the
    /// expected shape; extra tensors (e.g. `rotary_emb.inv_freq`) are ignored.
    public static func load(_ path: String) throws -> ModelFiles {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FormatError(file: path, "no such file or folder")
        }
        if isDir.boolValue { return try loadFolder(path) }
        if path.hasSuffix(".gguf") || startsWithGGUFMagic(path) { return try loadGGUF(path) }
        throw FormatError(file: path, "expected a .gguf file or a folder with config.json and safetensors weights")
    }

    private static func startsWithGGUFMagic(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        return (try? h.read(upToCount: 4)) == Data("GGUF".utf8)
    }

    /// Loads a GGUF file: names mapped to HF, q/k rows un-permuted for `llama`. Gemma 3's norm
    /// weights stay as stored (`1 + w`: llama.cpp's converter added the 1; a Hugging Face folder's
    /// get it added at load). A file without a chat
    /// template gets its family's published one when LangTune knows it (`BuiltInChatTemplates`).
    public static func loadGGUF(_ path: String) throws -> ModelFiles {
        let gguf = try GGUFFile(path: path)
        let config = try gguf.llamaConfig()
        var tensors: [String: WeightTensor] = [:]
        for info in gguf.tensorInfos {
            var t = gguf.tensor(info)
            guard let hf = GGUFTensorNames.hfName(forGGUF: info.name, architecture: config.architecture) else {
                tensors[info.name] = t  // no HF counterpart (e.g. rope_freqs): kept under its own name
                continue
            }
            if config.architecture == "llama" {
                if hf.contains(".self_attn.q_proj.") {
                    t = try unpermute(t, heads: config.numHeads, file: path)
                } else if hf.contains(".self_attn.k_proj.") {
                    t = try unpermute(t, heads: config.numKVHeads, file: path)
                }
            }
            tensors[hf] = WeightTensor(name: hf, shape: t.shape, dtype: t.dtype, storage: t.storage,
                                       offset: t.offset, byteCount: t.byteCount)
        }
        try validateTensors(tensors, config: config, file: { _ in path })
        return ModelFiles(path: path, format: .gguf, config: config, tensors: tensors,
                          tokenizer: .gguf(metadata: gguf.metadata, file: path),
                          chatTemplate: gguf.metadata["tokenizer.chat_template"]?.string
                              ?? BuiltInChatTemplates.template(forArchitecture: config.architecture),
                          generationDefaults: nil)
    }

    private static func unpermute(_ t: WeightTensor, heads: Int, file: String) throws -> WeightTensor {
        do { return try GGUFTensorNames.unpermuteQK(t, heads: heads) } catch let e as FormatError {
            throw FormatError(file: file, "tensor \"\(t.name)\": \(e.problem)")
        }
    }

    /// Loads a Hugging Face model folder.
    public static func loadFolder(_ folder: String) throws -> ModelFiles {
        func file(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }
        guard exists("config.json") else { throw FormatError(file: folder, "no config.json in this folder") }
        let hfConfig = try HFConfig.load(file("config.json"))
        let config = try hfConfig.llamaConfig(file: file("config.json"))
        let weightsPath: String
        if exists("model.safetensors") {
            weightsPath = file("model.safetensors")
        } else if exists("model.safetensors.index.json") {
            weightsPath = file("model.safetensors.index.json")
        } else {
            throw FormatError(file: folder, "no model.safetensors or model.safetensors.index.json in this folder")
        }
        let checkpoint = try SafetensorsCheckpoint(path: weightsPath)
        var stored = checkpoint.tensors, fileOf = checkpoint.fileOfTensor
        if hfConfig.textModelOf != nil {
            // A multimodal checkpoint: its language model's tensors under the text model's names, the rest left out.
            stored = [:]
            fileOf = [:]
            for (name, t) in checkpoint.tensors {
                guard let renamed = HFConfig.textModelTensorName(name) else { continue }
                stored[renamed] = WeightTensor(name: renamed, shape: t.shape, dtype: t.dtype, storage: t.storage,
                                               offset: t.offset, byteCount: t.byteCount)
                fileOf[renamed] = checkpoint.fileOfTensor[name]
            }
        }
        let (nf4, loaded) = try BitsAndBytesNF4.extract(stored) { fileOf[$0] ?? weightsPath }
        var tensors = loaded
        try validateTensors(tensors, config: config, nf4: nf4) { fileOf[$0] ?? weightsPath }
        if config.gemma3 != nil {
            // transformers' Gemma norms multiply by 1 + w; LangTune holds the multiplier, as a GGUF does.
            for (name, t) in tensors where LlamaConfig.isGemmaNormWeight(name) && nf4[name] == nil {
                let values: [Float]
                do { values = try dequantize(t) } catch let e as FormatError {
                    throw FormatError(file: fileOf[name] ?? weightsPath, "tensor \"\(name)\": \(e.problem)")
                }
                tensors[name] = .float32(name: name, shape: t.shape, values: values.map { $0 + 1 })
            }
        }

        guard exists("tokenizer.json") else { throw FormatError(file: folder, "no tokenizer.json in this folder") }
        let tokenizerJSON = try readFile(file("tokenizer.json"))
        let tokenizerConfig = exists("tokenizer_config.json") ? try readFile(file("tokenizer_config.json")) : nil
        var template: String?
        if exists("chat_template.jinja") {
            template = String(decoding: try readFile(file("chat_template.jinja")), as: UTF8.self)
        } else if let data = tokenizerConfig {
            template = try chatTemplate(inConfigJSON: data, file: file("tokenizer_config.json"))
        }
        if template == nil, exists("chat_template.json") {
            template = try chatTemplate(inConfigJSON: readFile(file("chat_template.json")), file: file("chat_template.json"))
        }
        // A folder saved from a template-less GGUF (transformers' Gemma 3) gets its family's published one, as the GGUF does.
        if template == nil { template = BuiltInChatTemplates.template(forArchitecture: config.architecture) }
        let generation = exists("generation_config.json") ? try GenerationDefaults.load(file("generation_config.json")) : nil
        return ModelFiles(path: folder, format: .safetensors, config: config, tensors: tensors,
                          tokenizer: .huggingFace(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfig,
                                                  file: file("tokenizer.json")),
                          chatTemplate: template, generationDefaults: generation, nf4: nf4)
    }

    /// `chat_template` of a tokenizer_config.json: a string, or a list of
    /// `{name, template}` (the one named `default`, else the first).
    static func chatTemplate(inConfigJSON data: Data, file: String) throws -> String? {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw FormatError(file: file, "not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else { throw FormatError(file: file, "not a JSON object") }
        switch dict["chat_template"] {
        case let s as String: return s
        case let list as [[String: Any]]:
            let named = list.first { ($0["name"] as? String) == "default" } ?? list.first
            return named?["template"] as? String
        default: return nil
        }
    }

    /// Names and shapes (`[out, in]`) of every tensor `config` requires.
    public static func requiredTensors(_ config: LlamaConfig) -> [(name: String, shape: [Int])] {
        let h = config.hiddenSize, q = config.numHeads * config.headDim, kv = config.numKVHeads * config.headDim
        let f = config.intermediateSize
        var out: [(String, [Int])] = [("model.embed_tokens.weight", [config.vocabSize, h])]
        for i in 0..<config.numLayers {
            let p = "model.layers.\(i)."
            out.append((p + "input_layernorm.weight", [h]))
            out.append((p + "self_attn.q_proj.weight", [q, h]))
            out.append((p + "self_attn.k_proj.weight", [kv, h]))
            out.append((p + "self_attn.v_proj.weight", [kv, h]))
            if config.attentionBias {
                out.append((p + "self_attn.q_proj.bias", [q]))
                out.append((p + "self_attn.k_proj.bias", [kv]))
                out.append((p + "self_attn.v_proj.bias", [kv]))
            }
            out.append((p + "self_attn.o_proj.weight", [h, q]))
            out.append((p + "post_attention_layernorm.weight", [h]))
            if config.gemma3 != nil {
                out.append((p + "pre_feedforward_layernorm.weight", [h]))
                out.append((p + "post_feedforward_layernorm.weight", [h]))
                out.append((p + "self_attn.q_norm.weight", [config.headDim]))
                out.append((p + "self_attn.k_norm.weight", [config.headDim]))
            }
            out.append((p + "mlp.gate_proj.weight", [f, h]))
            out.append((p + "mlp.up_proj.weight", [f, h]))
            out.append((p + "mlp.down_proj.weight", [h, f]))
        }
        out.append(("model.norm.weight", [h]))
        if !config.tieWordEmbeddings { out.append(("lm_head.weight", [config.vocabSize, h])) }
        return out
    }

    /// Throws a `FormatError` naming the file, the tensor and both shapes for
    /// the first required tensor that is missing or has the wrong shape.
    static func validateTensors(_ tensors: [String: WeightTensor], config: LlamaConfig, nf4: [String: NF4Tensor] = [:],
                                file: (String) -> String) throws {
        for (name, shape) in requiredTensors(config) {
            if let q = nf4[name] {
                guard q.shape == shape else {
                    throw FormatError(file: file(name), "4-bit tensor \"\(name)\" has shape \(q.shape), expected \(shape)")
                }
                continue
            }
            guard let t = tensors[name] else {
                throw FormatError(file: file(name), "missing tensor \"\(name)\" (expected shape \(shape))")
            }
            guard t.shape == shape else {
                throw FormatError(file: file(name), "tensor \"\(name)\" has shape \(t.shape), expected \(shape)")
            }
        }
    }

    /// Number of model parameters: elements of the required tensors (a tied
    /// output matrix counted once, stray extras like `inv_freq` not at all).
    public var parameterCount: Int {
        Self.requiredTensors(config).reduce(0) { $0 + (tensors[$1.name]?.elementCount ?? nf4[$1.name]?.count ?? 0) }
    }

    /// How many tensors of each element type the model has.
    public var dtypeHistogram: [DType: Int] { dtypeUsage.mapValues(\.tensors) }

    /// Tensors, elements and bytes per element type, over all tensors.
    public var dtypeUsage: [DType: DTypeUsage] {
        var out: [DType: DTypeUsage] = [:]
        for t in tensors.values {
            out[t.dtype, default: DTypeUsage(tensors: 0, elements: 0, bytes: 0)].tensors += 1
            out[t.dtype]!.elements += t.elementCount
            out[t.dtype]!.bytes += t.byteCount
        }
        return out
    }
}
