/// Hyper-parameters of a Llama-family decoder (Llama 2/3, Mistral, Qwen2, SmolLM, Gemma 3),
/// whichever file they came from (HF `config.json` or GGUF metadata).
public struct LlamaConfig: Sendable, Equatable, Codable {
    /// `llama`, `mistral`, `qwen2` or `gemma3` (lower-case, as in GGUF `general.architecture`).
    public var architecture: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// q/k/v projections carry a bias (Qwen2).
    public var attentionBias: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// Set for Gemma 3 (its departures from Llama); nil for the Llama family proper.
    public var gemma3: Gemma3Options?
    /// Where the decoder layers sit in the source checkpoint's module tree, as PEFT names modules:
    /// nil means `model` (a causal LM); `model.language_model` for the text model of a
    /// `Gemma3ForConditionalGeneration` folder. Adapters made for this model are written under it,
    /// so PEFT applies them to the class the folder holds.
    public var adapterModuleRoot: String?

    public init(architecture: String, hiddenSize: Int, intermediateSize: Int, numLayers: Int, numHeads: Int,
                numKVHeads: Int, headDim: Int? = nil, vocabSize: Int, rmsNormEps: Float, ropeTheta: Double,
                ropeScaling: RopeScaling? = nil, maxPositionEmbeddings: Int, tieWordEmbeddings: Bool,
                attentionBias: Bool = false, bosTokenId: Int? = nil, eosTokenIds: [Int] = [],
                gemma3: Gemma3Options? = nil) {
        self.architecture = architecture
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? (hiddenSize / max(numHeads, 1))
        self.vocabSize = vocabSize
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.gemma3 = gemma3
    }

    /// Throws unless LangTune can train LoRA adapters on this architecture: every Llama-family
    /// model and Gemma 3 (its layers are in the training graph, Gemma3LayerGraph.swift); a
    /// soft-capped output head (Gemma 2's `final_logit_softcapping`) has no backward pass yet.
    public func requireTrainable(file: String, for action: String = "LoRA training") throws {
        if gemma3?.finalLogitSoftcap != nil {
            throw FormatError(file: file, "\(action) is not supported for \(architecture) models with final logit soft-capping")
        }
    }
}

/// RoPE frequency scaling: `llama3` (Llama 3.1's per-frequency blend; the other fields apply) or
/// `linear` (every inverse frequency divided by `factor`; Gemma 3 4B and up scale their global layers so);
/// other types are refused at load time rather than silently ignored.
public struct RopeScaling: Sendable, Equatable, Codable {
    public var type: String
    public var factor: Double
    public var lowFreqFactor: Double
    public var highFreqFactor: Double
    public var originalMaxPositionEmbeddings: Int

    public init(type: String, factor: Double, lowFreqFactor: Double = 1, highFreqFactor: Double = 4,
                originalMaxPositionEmbeddings: Int = 8192) {
        self.type = type
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }
}
