import Foundation

/// The linear layers LoRA can adapt, named as PEFT's `target_modules`.
public enum LoRATarget: String, Sendable, CaseIterable, Codable, Comparable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// Parses `q`, `q_proj`, `gate`, … (the CLI's `--targets q,k,v,o,gate,up,down`).
    public init?(short: String) {
        let s = short.trimmingCharacters(in: .whitespaces).lowercased()
        if let t = LoRATarget(rawValue: s) { self = t; return }
        if let t = LoRATarget(rawValue: s + "_proj") { self = t; return }
        return nil
    }

    /// `self_attn` or `mlp`: the HF module that holds this projection.
    public var block: String {
        switch self {
        case .q, .k, .v, .o: return "self_attn"
        case .gate, .up, .down: return "mlp"
        }
    }

    /// (out, in) features of this projection in a model of `config`.
    public func shape(_ c: LlamaConfig) -> (out: Int, in: Int) {
        switch self {
        case .q: return (c.numHeads * c.headDim, c.hiddenSize)
        case .k, .v: return (c.numKVHeads * c.headDim, c.hiddenSize)
        case .o: return (c.hiddenSize, c.numHeads * c.headDim)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }

    public static func < (a: LoRATarget, b: LoRATarget) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// LoRA hyper-parameters, with PEFT's meaning.
public struct LoRAConfig: Sendable, Equatable, Codable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    public var targets: [LoRATarget]
    /// rsLoRA: scale alpha / sqrt(r) instead of alpha / r.
    public var useRSLoRA: Bool
    /// What the adapter was trained on (recorded as PEFT's `base_model_name_or_path`).
    public var baseModel: String
    /// The base model's `LlamaConfig.adapterModuleRoot` (nil: `model`), the prefix of the module
    /// names the adapter is written under. Set from the model the adapter is made for or loaded onto.
    public var moduleRoot: String?

    public init(rank: Int = 16, alpha: Double = 32, dropout: Double = 0, targets: [LoRATarget] = LoRATarget.allCases,
                useRSLoRA: Bool = false, baseModel: String = "") {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets.sorted()
        self.useRSLoRA = useRSLoRA
        self.baseModel = baseModel
    }

    /// The factor PEFT multiplies B·A·x by.
    public var scale: Float { Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }
}

/// One adapted linear layer: `y = W x + scale · B (A x)`, A `[r, in]`, B `[out, r]`, float32.
public final class LoRAWeights: @unchecked Sendable {
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    public let a: FloatBuffer
    public let b: FloatBuffer

    public init(rank: Int, inFeatures: Int, outFeatures: Int, a: FloatBuffer, b: FloatBuffer) {
        precondition(a.count == rank * inFeatures && b.count == outFeatures * rank)
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.a = a
        self.b = b
    }

    /// PEFT's initialisation: A Kaiming-uniform with a = sqrt(5) (bound 1/sqrt(in)), B zero.
    public convenience init(rank: Int, inFeatures: Int, outFeatures: Int, rng: inout SplitMix64) {
        let bound = 1 / Double(inFeatures).squareRoot()
        let a = FloatBuffer(count: rank * inFeatures, zeroed: false)
        for i in 0..<a.count { a.pointer[i] = Float((rng.nextDouble() * 2 - 1) * bound) }
        self.init(rank: rank, inFeatures: inFeatures, outFeatures: outFeatures, a: a,
                  b: FloatBuffer(count: outFeatures * rank))
    }
}

/// A LoRA adapter for a whole model: per layer, the adapted projections.
public final class LoRAAdapter: @unchecked Sendable {
    public let config: LoRAConfig
    /// `layers[i][target]`
    public let layers: [[LoRATarget: LoRAWeights]]

    public init(config: LoRAConfig, layers: [[LoRATarget: LoRAWeights]]) {
        self.config = config
        self.layers = layers
    }

    /// A fresh adapter with PEFT's initialisation for a model of `model`'s shape, seeded.
    public convenience init(config: LoRAConfig, model: LlamaConfig, seed: UInt64) throws {
        var config = config
        config.moduleRoot = model.adapterModuleRoot
        var rng = SplitMix64(seed: seed)
        var layers: [[LoRATarget: LoRAWeights]] = []
        for _ in 0..<model.numLayers {
            var l: [LoRATarget: LoRAWeights] = [:]
            for t in config.targets {
                let (o, i) = t.shape(model)
                guard config.rank >= 1, config.rank <= min(o, i) else {
                    throw LoRAError("rank \(config.rank) does not fit \(t.rawValue) (\(o)×\(i)); use 1…\(min(o, i))")
                }
                l[t] = LoRAWeights(rank: config.rank, inFeatures: i, outFeatures: o, rng: &rng)
            }
            layers.append(l)
        }
        self.init(config: config, layers: layers)
    }

    /// PEFT's tensor name for a LoRA matrix: `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`,
    /// with `root` in place of `model` for the layers of a multimodal model's text model.
    public static func peftName(layer: Int, target: LoRATarget, matrix: String, root: String? = nil) -> String {
        "base_model.model.\(modulePath(layer: layer, target: target, root: root)).lora_\(matrix).weight"
    }

    /// The module path of a target (`model.layers.3.self_attn.q_proj`), what PEFT matches
    /// `target_modules`, `rank_pattern` and `alpha_pattern` against.
    public static func modulePath(layer: Int, target: LoRATarget, root: String? = nil) -> String {
        "\(root ?? "model").layers.\(layer).\(target.block).\(target.rawValue)"
    }

    /// The adapted weights of `target` in `layer`, nil where the adapter leaves it alone.
    func weights(layer: Int, _ target: LoRATarget) -> LoRAWeights? {
        layer < layers.count ? layers[layer][target] : nil
    }

    /// Number of trainable parameters.
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.a.count + $1.b.count } } }
}

/// A LoRA setting or file that cannot be used.
public struct LoRAError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { description = message }
}
