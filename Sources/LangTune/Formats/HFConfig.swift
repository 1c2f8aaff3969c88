import Foundation

/// A token id field that `transformers` writes as one integer or a list.
public enum HFTokenIds: Codable, Sendable, Equatable {
    case single(Int)
    case list([Int])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int.self) { self = .single(v) } else { self = .list(try c.decode([Int].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .single(let v): try c.encode(v)
        case .list(let v): try c.encode(v)
        }
    }

    public var values: [Int] {
        switch self {
        case .single(let v): return [v]
        case .list(let v): return v
        }
    }
}

/// `rope_scaling` (and transformers 5's `rope_parameters`) from config.json.
public struct HFRopeScaling: Codable, Sendable, Equatable {
    public var ropeType: String?
    /// Older spelling of `rope_type`.
    public var type: String?
    public var factor: Double?
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    public var originalMaxPositionEmbeddings: Int?
    /// Only in `rope_parameters`.
    public var ropeTheta: Double?

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type", type, factor, lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings", ropeTheta = "rope_theta"
    }

    /// `rope_type`, else `type`, else nil.
    public var kind: String? { ropeType ?? type }
}

/// transformers 5's `rope_parameters`: one set for the model, or (Gemma 3) one per layer type,
/// `{"full_attention": {…}, "sliding_attention": {…}}`.
public enum HFRopeParameters: Codable, Sendable, Equatable {
    case shared(HFRopeScaling)
    case perLayerType([String: HFRopeScaling])

    static let layerTypes: Set<String> = ["full_attention", "sliding_attention", "chunked_attention", "linear_attention"]

    public init(from decoder: Decoder) throws {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        let keys = try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue)
        if !keys.isEmpty, keys.allSatisfy(Self.layerTypes.contains) {
            self = .perLayerType(try decoder.singleValueContainer().decode([String: HFRopeScaling].self))
        } else {
            self = .shared(try decoder.singleValueContainer().decode(HFRopeScaling.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .shared(let v): try c.encode(v)
        case .perLayerType(let v): try c.encode(v)
        }
    }

    /// The model-wide set; nil for per-layer-type parameters.
    public var shared: HFRopeScaling? {
        if case .shared(let v) = self { return v }
        return nil
    }
}

/// A Hugging Face `config.json` of a Llama-family model, field for field.
/// Absent fields are nil; `llamaConfig` applies transformers' defaults.
public struct HFConfig: Codable, Sendable, Equatable {
    public var architectures: [String]?
    public var modelType: String?
    public var hiddenSize: Int?
    public var intermediateSize: Int?
    public var numHiddenLayers: Int?
    public var numAttentionHeads: Int?
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var vocabSize: Int?
    public var rmsNormEps: Double?
    public var ropeTheta: Double?
    public var ropeScaling: HFRopeScaling?
    public var ropeParameters: HFRopeParameters?
    public var maxPositionEmbeddings: Int?
    public var tieWordEmbeddings: Bool?
    public var attentionBias: Bool?
    public var bosTokenId: Int?
    public var eosTokenId: HFTokenIds?
    public var torchDtype: String?
    /// transformers 5 renamed `torch_dtype` to `dtype`.
    public var dtype: String?
    /// Mistral's attention window (not applied by LangTune; reported for callers).
    public var slidingWindow: Int?
    /// Qwen2's switch for `sliding_window`.
    public var useSlidingWindow: Bool?
    /// Gemma 3: `sliding_attention` or `full_attention` per layer (transformers >= 4.53).
    public var layerTypes: [String]?
    /// Gemma 3: every n-th layer is global (older configs; `_sliding_window_pattern` in newer ones).
    public var slidingWindowPattern: Int?
    public var privateSlidingWindowPattern: Int?
    /// Gemma 3: attention scores are scaled by `query_pre_attn_scalar^-1/2`.
    public var queryPreAttnScalar: Double?
    /// Gemma 3 (transformers 4): RoPE base of the sliding-window layers.
    public var ropeLocalBaseFreq: Double?
    /// Gemma's activation (`gelu_pytorch_tanh`); Llama's `hidden_act`.
    public var hiddenActivation: String?
    public var hiddenAct: String?
    public var finalLogitSoftcapping: Double?
    public var attnLogitSoftcapping: Double?
    public var useBidirectionalAttention: Bool?
    /// Set when this is the text model read out of a multimodal config (`Gemma3ForConditionalGeneration`):
    /// its weights carry that model's prefixes (`HFConfig.textModelTensorName`). Not part of the file.
    public var textModelOf: String?

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", vocabSize = "vocab_size"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", torchDtype = "torch_dtype", dtype
        case slidingWindow = "sliding_window", useSlidingWindow = "use_sliding_window"
        case layerTypes = "layer_types", slidingWindowPattern = "sliding_window_pattern"
        case privateSlidingWindowPattern = "_sliding_window_pattern", queryPreAttnScalar = "query_pre_attn_scalar"
        case ropeLocalBaseFreq = "rope_local_base_freq", hiddenActivation = "hidden_activation", hiddenAct = "hidden_act"
        case finalLogitSoftcapping = "final_logit_softcapping", attnLogitSoftcapping = "attn_logit_softcapping"
        case useBidirectionalAttention = "use_bidirectional_attention"
    }

    public init(architectures: [String]? = nil, modelType: String? = nil, hiddenSize: Int? = nil,
                intermediateSize: Int? = nil, numHiddenLayers: Int? = nil, numAttentionHeads: Int? = nil,
                numKeyValueHeads: Int? = nil, headDim: Int? = nil, vocabSize: Int? = nil, rmsNormEps: Double? = nil,
                ropeTheta: Double? = nil, ropeScaling: HFRopeScaling? = nil, maxPositionEmbeddings: Int? = nil,
                tieWordEmbeddings: Bool? = nil, attentionBias: Bool? = nil, bosTokenId: Int? = nil,
                eosTokenId: HFTokenIds? = nil, torchDtype: String? = nil) {
        self.architectures = architectures
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim
        self.vocabSize = vocabSize
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.torchDtype = torchDtype
    }

    /// Decodes `config.json` bytes; `file` names them in errors.
    public static func decode(_ data: Data, file: String) throws -> HFConfig {
        let config: HFConfig
        do { config = try JSONDecoder().decode(HFConfig.self, from: data) } catch {
            throw FormatError(file: file, "not a valid config.json: \(describeDecodingError(error))")
        }
        if config.architectures?.first == "Gemma3ForConditionalGeneration" {
            return try gemma3TextModel(data, outer: config, file: file)
        }
        return config
    }

    /// Reads and decodes a `config.json` file.
    public static func load(_ path: String) throws -> HFConfig {
        try decode(readFile(path), file: path)
    }

    /// Architectures LangTune runs, by `architectures[0]`, with their LlamaConfig name.
    public static let supportedArchitectures: [String: String] = [
        "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2",
        "Gemma3ForCausalLM": "gemma3",
    ]

    /// `model_type` values of the supported architectures, for configs without `architectures`.
    static let supportedModelTypes: [String: String] = [
        "llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "gemma3_text": "gemma3",
    ]

    /// The model's hyper-parameters, with transformers' defaults for absent
    /// optional fields. Unknown architectures and RoPE scalings other than
    /// none/`default`/`llama3` are refused rather than run wrongly.
    public func llamaConfig(file: String) throws -> LlamaConfig {
        func fail(_ p: String) -> FormatError { FormatError(file: file, p) }
        func need(_ v: Int?, _ key: String) throws -> Int { try HFConfig.need(v, key, file: file) }
        let arch: String
        if let name = architectures?.first {
            guard let a = Self.supportedArchitectures[name] else {
                throw fail("unsupported architecture \(name) (supported: \(Self.supportedArchitectures.keys.sorted().joined(separator: ", ")), and Gemma3ForConditionalGeneration's text model)")
            }
            arch = a
        } else if let t = modelType, let a = Self.supportedModelTypes[t] {
            arch = a
        } else {
            throw fail("no architectures and no supported model_type (\(modelType ?? "none"))")
        }
        let hidden = try need(hiddenSize, "hidden_size")
        let heads = try need(numAttentionHeads, "num_attention_heads")
        let kvHeads = try need(numKeyValueHeads ?? heads, "num_key_value_heads")
        guard heads % kvHeads == 0 else {
            throw fail("num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        let hd: Int
        if let h = headDim ?? (arch == "gemma3" ? 256 : nil) {
            hd = try need(h, "head_dim")
        } else {
            guard hidden % heads == 0 else { throw fail("hidden_size \(hidden) is not a multiple of num_attention_heads \(heads) and head_dim is absent") }
            hd = hidden / heads
        }
        guard hd % 2 == 0 else { throw fail("head_dim \(hd) must be even for RoPE") }
        if arch == "gemma3" {
            var c = try gemma3Config(file: file, hidden: hidden, heads: heads, kvHeads: kvHeads, headDim: hd)
            // transformers 5 (and 4.52+) name the text model's layers so inside the multimodal class.
            if textModelOf != nil { c.adapterModuleRoot = "model.language_model" }
            return c
        }
        if case .perLayerType = ropeParameters { throw fail("rope_parameters per layer type is only supported for Gemma 3") }
        let rope = ropeParameters?.shared ?? ropeScaling
        var scaling: RopeScaling?
        switch rope?.kind {
        case nil, "default": scaling = nil
        case "llama3":
            guard let factor = rope?.factor, factor > 0 else { throw fail("llama3 rope_scaling needs a positive factor") }
            let low = rope?.lowFreqFactor ?? 1, high = rope?.highFreqFactor ?? 4
            guard high > low else { throw fail("llama3 rope_scaling needs high_freq_factor > low_freq_factor") }
            scaling = RopeScaling(type: "llama3", factor: factor, lowFreqFactor: low, highFreqFactor: high,
                                  originalMaxPositionEmbeddings: try need(rope?.originalMaxPositionEmbeddings ?? 8192, "original_max_position_embeddings"))
        case "linear":
            scaling = try HFConfig.linearScaling(rope, key: "rope_scaling", file: file)
        case let other?:
            throw fail("unsupported rope_scaling type \"\(other)\" (supported: default, linear, llama3)")
        }
        let defaultMaxPositions = ["llama": 2048, "mistral": 4096 * 32, "qwen2": 32768][arch] ?? 2048
        return LlamaConfig(
            architecture: arch, hiddenSize: hidden,
            intermediateSize: try need(intermediateSize, "intermediate_size"),
            numLayers: try need(numHiddenLayers, "num_hidden_layers"),
            numHeads: heads, numKVHeads: kvHeads, headDim: hd,
            vocabSize: try need(vocabSize, "vocab_size"),
            rmsNormEps: Float(rmsNormEps ?? 1e-6),
            ropeTheta: ropeParameters?.shared?.ropeTheta ?? ropeTheta ?? 10000,
            ropeScaling: scaling,
            maxPositionEmbeddings: try need(maxPositionEmbeddings ?? defaultMaxPositions, "max_position_embeddings"),
            tieWordEmbeddings: tieWordEmbeddings ?? false,
            attentionBias: arch == "qwen2" ? true : (attentionBias ?? false),
            bosTokenId: bosTokenId,
            eosTokenIds: eosTokenId?.values ?? [])
    }
}

extension GenerationDefaults {
    /// Reads a `generation_config.json`. `do_sample: false` means greedy
    /// decoding in transformers whatever the temperature, so it becomes temperature 0.
    public static func load(_ path: String) throws -> GenerationDefaults {
        try decode(readFile(path), file: path)
    }

    public static func decode(_ data: Data, file: String) throws -> GenerationDefaults {
        struct Raw: Decodable {
            var temperature: Double?
            var top_p: Double?
            var top_k: Int?
            var repetition_penalty: Double?
            var do_sample: Bool?
            var eos_token_id: HFTokenIds?
        }
        let raw: Raw
        do { raw = try JSONDecoder().decode(Raw.self, from: data) } catch {
            throw FormatError(file: file, "not a valid generation_config.json: \(describeDecodingError(error))")
        }
        return GenerationDefaults(temperature: raw.do_sample == false ? 0 : raw.temperature, topP: raw.top_p, topK: raw.top_k,
                                  repetitionPenalty: raw.repetition_penalty, eosTokenIds: raw.eos_token_id?.values ?? [])
    }
}

extension HFConfig {
    /// `v`, or a `FormatError` when it is absent or not positive.
    static func need(_ v: Int?, _ key: String, file: String) throws -> Int {
        guard let v else { throw FormatError(file: file, "missing \(key)") }
        guard v > 0 else { throw FormatError(file: file, "\(key) must be positive, got \(v)") }
        return v
    }
}

/// The bytes of `path`, or a `FormatError` naming it.
func readFile(_ path: String) throws -> Data {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw FormatError(file: path, "no such file") }
    guard !isDir.boolValue else { throw FormatError(file: path, "is a directory, not a file") }
    do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw FormatError(file: path, "cannot read: \(error.localizedDescription)")
    }
}
