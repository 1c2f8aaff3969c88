import Foundation

/// Where a model's tokenizer is described.
public enum TokenizerSource: Sendable {
    /// A Hugging Face `tokenizer.json` (bytes) and, if present, `tokenizer_config.json` (bytes).
    case huggingFace(tokenizerJSON: Data, tokenizerConfigJSON: Data?, file: String)
    /// GGUF `tokenizer.ggml.*` metadata.
    case gguf(metadata: [String: GGUFValue], file: String)
}

/// Sampling defaults a model ships (`generation_config.json`), all optional.
public struct GenerationDefaults: Sendable, Equatable {
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var repetitionPenalty: Double?
    public var eosTokenIds: [Int]
    public init(temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil,
                repetitionPenalty: Double? = nil, eosTokenIds: [Int] = []) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.repetitionPenalty = repetitionPenalty
        self.eosTokenIds = eosTokenIds
    }
}

/// Everything read from a model on disk (a GGUF file or a safetensors folder),
/// normalised to Hugging Face conventions: tensor names are HF's
/// (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight` only when untied),
/// shapes are `[out, in]`, and q/k rows are in HF order (llama.cpp's GGUF
/// permutation already undone).
public struct ModelFiles: Sendable {
    public enum Format: String, Sendable { case gguf, safetensors }
    public let path: String
    public let format: Format
    public let config: LlamaConfig
    public let tensors: [String: WeightTensor]
    public let tokenizer: TokenizerSource
    /// Jinja chat template text, from `tokenizer_config.json` or `tokenizer.chat_template`.
    public let chatTemplate: String?
    public let generationDefaults: GenerationDefaults?
    /// Weights stored as bitsandbytes NF4 (a folder `langtune quantize` or transformers with
    /// bitsandbytes wrote), by HF name; these names are not in `tensors`.
    public let nf4: [String: NF4Tensor]

    public init(path: String, format: Format, config: LlamaConfig, tensors: [String: WeightTensor],
                tokenizer: TokenizerSource, chatTemplate: String?, generationDefaults: GenerationDefaults?,
                nf4: [String: NF4Tensor] = [:]) {
        self.nf4 = nf4
        self.path = path
        self.format = format
        self.config = config
        self.tensors = tensors
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.generationDefaults = generationDefaults
    }
}
