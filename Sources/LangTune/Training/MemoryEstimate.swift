import Foundation

/// The expected peak memory of a training run, by part, from the shapes alone: what
/// `inspect --memory` prints. The model of each part follows what the trainer allocates
/// (`LoRAGraph`, `LayerActivations`, `LoRAOptimizer`); on SmolLM2-135M at batch 2 × 512 it
/// predicts 1.55 GB for LoRA and 1.18 GB for QLoRA against 1.57 and 1.21 GB measured (peak RSS).
public struct MemoryEstimate: Sendable, Codable {
    public enum Method: String, Sendable, Codable { case lora, qlora }

    /// (part, bytes), in print order.
    public var parts: [Part]
    public struct Part: Sendable, Codable {
        public var name: String
        public var bytes: Int
    }
    public var total: Int { parts.reduce(0) { $0 + $1.bytes } }

    /// Runtime, tokenizer, libraries, the data set and the mapped model file's touched pages: an
    /// allowance (not measured on its own) that brings the sum of the modelled parts to the measured
    /// SmolLM2 peaks above.
    public static let runtimeBytes = 150_000_000

    /// - Parameters:
    ///   - baseBytesPerWeight: what one frozen projection weight that is not NF4 costs: 4 (float32) or 2
    ///     (bf16, `bench memory --method lora`). NF4 ones cost about 0.52 with double quantization
    ///     (0.5 + 1/64 + nested scales), 0.5625 without.
    ///   - embeddingBytesPerValue: 4 (float32) or 2 (bf16/f16 kept as stored, which also makes the
    ///     logits chunks bigger, as `LoRAGraph` does for a head without a float32 copy).
    public static func training(config c: LlamaConfig, method: Method, rank: Int, targets: [LoRATarget] = LoRATarget.allCases,
                                seqLen: Int, batchSize: Int, checkpointActivations: Bool = false, doubleQuant: Bool = true,
                                dropout: Bool = false, logitsChunk: Int = 64, baseBytesPerWeight: Double = 4,
                                embeddingBytesPerValue: Int = 4) -> MemoryEstimate {
        let H = c.hiddenSize, qW = c.numHeads * c.headDim, kvW = c.numKVHeads * c.headDim, I = c.intermediateSize
        let L = c.numLayers, V = c.vocabSize
        let n = seqLen * batchSize
        func size(_ t: LoRATarget) -> Int { let s = t.shape(c); return s.out * s.in }
        let projections: Int = LoRATarget.allCases.map(size).reduce(0, +) * L
        let quantized: Int = method == .qlora ? targets.map(size).reduce(0, +) * L : 0
        // Codes, then per 64-weight block a 1-byte scale code (+ a float per 256 blocks) or a float scale.
        let doubleQuantCost: Double = 0.5 + 1.0 / 64.0 + 4.0 / 16384.0
        let plainCost: Double = 0.5 + 4.0 / 64.0
        let nf4PerWeight: Double = doubleQuant ? doubleQuantCost : plainCost
        let frozen: Double = Double(projections - quantized) * baseBytesPerWeight + Double(quantized) * nf4PerWeight
        let embeddings: Int = V * H * embeddingBytesPerValue * (c.tieWordEmbeddings ? 1 : 2) + (2 * L + 1) * H * 4
        let loraParams: Int = targets.map { rank * ($0.shape(c).in + $0.shape(c).out) }.reduce(0, +) * L
        // One layer's saved activations (LayerActivations: xIn, xMid, q, att, k, v, gate, up) and the
        // backward's temporaries (gradients plus the recomputed norms and SwiGLU output).
        let perToken: Int = 2 * H + 2 * qW + 2 * kvW + 2 * I
        var perLayer: Int = n * perToken
        perLayer += n * (2 + c.numHeads)
        perLayer += targets.count * n * rank
        if dropout { perLayer += targets.map { n * $0.shape(c).in }.reduce(0, +) }
        let kept = checkpointActivations ? perLayer + L * n * H : L * perLayer
        let backwardPerToken: Int = 4 * I + 6 * H + 2 * qW + 2 * kvW
        let backward: Int = n * backwardPerToken
        let chunkRows = LoRAGraph.logitsRows(chunk: logitsChunk, vocab: V, headHasFloatCopy: embeddingBytesPerValue == 4)
        let logits: Int = chunkRows * V + 2 * chunkRows * H + 3 * n * H
        return MemoryEstimate(parts: [
            Part(name: method == .qlora ? "frozen projections (NF4 where adapted)"
                    : "frozen projections (\(baseBytesPerWeight == 2 ? "bf16" : "float32"))", bytes: Int(frozen)),
            Part(name: "embeddings, output head (\(embeddingBytesPerValue == 2 ? "bf16" : "float32")), norms", bytes: embeddings),
            Part(name: "LoRA parameters (float32)", bytes: 4 * loraParams),
            Part(name: "LoRA gradients", bytes: 4 * loraParams),
            Part(name: "optimizer state (AdamW moments)", bytes: 8 * loraParams),
            Part(name: checkpointActivations ? "activations (one layer + layer inputs)" : "activations (all layers)", bytes: 4 * kept),
            Part(name: "backward temporaries (one layer)", bytes: 4 * backward),
            Part(name: "logits (chunks of \(chunkRows) rows) and final norm", bytes: 4 * logits),
            Part(name: "runtime, tokenizer, libraries", bytes: runtimeBytes),
        ])
    }
}

extension LlamaConfig {
    /// Shapes `inspect shape:NAME --memory` and `bench memory --shape NAME` know without a file.
    public static let namedShapes: [String: LlamaConfig] = [
        "llama3-8b": .llama3_8B, "llama3.2-1b": .llama32_1B, "smollm2-135m": .smolLM2_135M,
    ]

    /// Llama-3.2-1B's shape (16 layers, hidden 2048, MLP 8192, 32 heads, 8 key/value heads, tied head).
    public static var llama32_1B: LlamaConfig {
        LlamaConfig(architecture: "llama", hiddenSize: 2048, intermediateSize: 8192, numLayers: 16, numHeads: 32,
                    numKVHeads: 8, headDim: 64, vocabSize: 128_256, rmsNormEps: 1e-5, ropeTheta: 500_000,
                    maxPositionEmbeddings: 8192, tieWordEmbeddings: true)
    }

    /// SmolLM2-135M's shape (30 layers, hidden 576, MLP 1536, 9 heads, 3 key/value heads, tied head).
    public static var smolLM2_135M: LlamaConfig {
        LlamaConfig(architecture: "llama", hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9,
                    numKVHeads: 3, headDim: 64, vocabSize: 49_152, rmsNormEps: 1e-5, ropeTheta: 100_000,
                    maxPositionEmbeddings: 8192, tieWordEmbeddings: true)
    }

    /// Llama-3-8B's shape (32 layers, hidden 4096, MLP 14336, 32 heads, 8 key/value heads, vocabulary
    /// 128256, separate output head), for estimates and benchmarks without the weights.
    public static var llama3_8B: LlamaConfig {
        LlamaConfig(architecture: "llama", hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32,
                    numKVHeads: 8, headDim: 128, vocabSize: 128_256, rmsNormEps: 1e-5, ropeTheta: 500_000,
                    maxPositionEmbeddings: 8192, tieWordEmbeddings: false)
    }
}
