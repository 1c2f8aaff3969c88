import CLangTuneKernels
import Foundation

/// Everything that decides a training run (saved with it, checked on `--resume`).
public struct TrainingOptions: Sendable, Codable, Equatable {
    public var lora = LoRAConfig()
    public var optimizer = AdamWOptions()
    public var schedule: LRSchedule = .cosine
    public var warmupSteps = 0
    /// Optimizer steps; nil means `epochs` passes over the data (or, with `timeBudget`, no limit).
    public var steps: Int?
    /// Wall-clock seconds of training (`--time-budget`): steps go on, over as many epochs as it
    /// takes, while the next one and the final validation still fit; the schedule runs on time.
    public var timeBudget: Double?
    public var epochs: Double = 1
    public var batchSize = 4
    public var gradAccum = 1
    public var evalEvery = 0
    public var saveEvery = 0
    public var seed: UInt64 = 0
    public var checkpointActivations = false
    /// `lora` or `qlora`, recorded in train_config.json (nil in runs from before it was recorded).
    public var method: String?
    /// The frozen base the adapter was trained on: `float32`, `nf4` (double-quantized or not) or
    /// `source blocks` (a GGUF's own); an adapter is best used on the base it was trained on.
    public var frozenBase: String?
    public init() {}

    /// `frozenBase` of the train_config.json in (or beside, for `best/`) an adapter folder, if recorded.
    public static func recordedFrozenBase(adapterFolder: String) -> String? {
        let here = URL(fileURLWithPath: adapterFolder)
        for dir in [here, here.deletingLastPathComponent()] {
            let url = dir.appendingPathComponent("train_config.json")
            if let data = try? Data(contentsOf: url), let o = try? JSONDecoder().decode(TrainingOptions.self, from: data) {
                return o.frozenBase
            }
        }
        return nil
    }
}

/// One line of `metrics.jsonl`.
public struct TrainingMetrics: Sendable, Codable {
    public var step: Int
    public var loss: Double?
    public var lr: Double?
    public var gradNorm: Double?
    public var tokens: Int?
    public var tokensPerSecond: Double?
    public var elapsed: Double
    public var valLoss: Double?
    /// With several ranks: this step's seconds in collectives on rank 0 (the exchange, and the
    /// wait for slower ranks).
    public var collectiveSeconds: Double?
    enum CodingKeys: String, CodingKey {
        case step, loss, lr, tokens, elapsed
        case gradNorm = "grad_norm", tokensPerSecond = "tokens_per_second", valLoss = "val_loss"
        case collectiveSeconds = "collective_seconds"
    }
}

/// What a finished (or interrupted) run reports.
public struct TrainingSummary: Sendable {
    public var steps: Int
    public var totalSteps: Int
    public var finalLoss: Double?
    public var bestValLoss: Double?
    public var bestStep: Int?
    public var baseValLoss: Double?
    public var tokens: Int
    public var seconds: Double
    public var interrupted: Bool
    public var adapterPath: String
}

/// A training run: LoRA on a frozen model, AdamW, schedule, accumulation,
/// clipping, validation, atomic checkpoints and exact resume.
public final class Trainer: @unchecked Sendable {
    public let model: LlamaModel
    public let adapter: LoRAAdapter
    public let options: TrainingOptions
    public let train: [TokenizedExample]
    public let validation: [TokenizedExample]
    public let output: URL
    let graph: LoRAGraph
    let optimizer: LoRAOptimizer
    let grads: LoRAGradients
    /// The ranks training together (data parallel); one process by default. Set it before `run`.
    public var collective: any Collective = SingleProcess()
    lazy var reducer = GradientReducer(bucketFloats: min(1 << 22, max(1, adapter.parameterCount)))

    /// Where the next batch comes from: (epoch, batch index within its plan).
    var epoch = 0
    var batchIndex = 0
    var plan: BatchPlan

    public init(model: LlamaModel, adapter: LoRAAdapter, train: [TokenizedExample], validation: [TokenizedExample],
                options: TrainingOptions, output: URL) {
        self.model = model
        self.adapter = adapter
        self.options = options
        self.train = train
        self.validation = validation
        self.output = output
        graph = LoRAGraph(model: model, adapter: adapter, checkpointActivations: options.checkpointActivations)
        optimizer = LoRAOptimizer(adapter: adapter, options: options.optimizer)
        grads = LoRAGradients(like: adapter)
        plan = BatchPlan(lengths: train.map(\.ids.count), batchSize: options.batchSize, seed: options.seed, epoch: 0)
    }

    /// Optimizer steps the run will take (with a time budget: at most, `Int.max` when only time limits it).
    public var totalSteps: Int {
        if let s = options.steps { return s }
        if options.timeBudget != nil { return Int.max }
        let micro = Double(plan.count) * options.epochs
        return max(1, Int((micro / Double(options.gradAccum)).rounded(.up)))
    }

    public func learningRate(at step: Int) -> Double {
        options.optimizer.learningRate * options.schedule.factor(step: step, total: totalSteps, warmup: options.warmupSteps)
    }

    /// The learning rate of a time-budgeted run at `step`, `elapsed` seconds into `seconds` of training:
    /// warm-up counts steps, the decay counts time, or steps when `--steps` ends the run sooner.
    public func learningRate(at step: Int, elapsed: Double, of seconds: Double) -> Double {
        let peak = options.optimizer.learningRate
        if step < options.warmupSteps { return peak * Double(step) / Double(options.warmupSteps) }
        var progress = elapsed / max(seconds, 1e-9)
        if let s = options.steps { progress = max(progress, Double(step - options.warmupSteps) / Double(max(1, s - options.warmupSteps))) }
        return peak * options.schedule.factor(progress: progress)
    }

    /// The next micro-batch, advancing through epochs.
    func nextMicroBatch() -> [TokenizedExample] {
        if batchIndex >= plan.count {
            epoch += 1
            batchIndex = 0
            plan = BatchPlan(lengths: train.map(\.ids.count), batchSize: options.batchSize, seed: options.seed, epoch: epoch)
        }
        defer { batchIndex += 1 }
        return plan.batches[batchIndex].map { train[$0] }
    }

    /// The micro-batches of the next optimizer step (advances the data position).
    public func nextStepBatches() -> [[TokenizedExample]] {
        (0..<options.gradAccum).map { _ in nextMicroBatch() }
    }

    /// Dropout seed of a micro-batch: a function of the run seed, step and index, so resume replays it.
    func dropoutSeed(step: Int, micro: Int) -> UInt64 {
        var r = SplitMix64(seed: options.seed ^ (UInt64(step) &* 0x9E37_79B9) ^ (UInt64(micro) << 48))
        return r.next()
    }

    /// One optimizer step on `batches` (its micro-batches, the global batch); returns the mean loss per
    /// target token, the gradient norm before clipping, and the tokens processed. With several ranks,
    /// each runs its share and the gradients are summed: every share is scaled by the global batch's
    /// answer-token count, so the sum is the single-process gradient (up to float32 summation order).
    public func step(_ batches: [[TokenizedExample]], lr: Double? = nil) throws -> (loss: Double, gradNorm: Double, tokens: Int) {
        let c = collective
        let targets = batches.reduce(0) { $0 + $1.reduce(0) { $0 + $1.targetCount } }
        let tokens = batches.reduce(0) { $0 + $1.reduce(0) { $0 + $1.ids.count } }
        let mine = DataShard.share(of: batches, rank: c.rank, size: c.size, batchSize: options.batchSize)
        let packed = mine.map { PackedBatch($0.map { (ids: $0.ids, labels: $0.labels) }) }
        grads.zero()
        let s = optimizer.step
        var loss = 0.0
        if targets > 0 {
            for (i, p) in packed.enumerated() where p.tokenCount > 0 {
                loss += graph.run(p, lossScale: 1 / Float(targets), grads: grads, dropoutSeed: dropoutSeed(step: s, micro: i * c.size + c.rank))
            }
        }
        if c.size > 1 {
            try reducer.allreduceSum(grads.all, over: c)
            loss = try c.sum([loss])[0]
        }
        let norm = optimizer.apply(grads, lr: lr ?? learningRate(at: s))
        return (targets > 0 ? loss / Double(targets) : 0, norm, tokens)
    }

    /// Mean loss per answer token over `examples` (no gradients, no dropout).
    /// With several ranks, each takes every size-th example and the sums are reduced.
    public func evaluate(_ examples: [TokenizedExample], withAdapter: Bool = true) throws -> Double {
        let c = collective
        let mine = DataShard.share(of: examples, rank: c.rank, size: c.size)
        var loss = 0.0, count = 0
        let g = withAdapter ? graph : LoRAGraph(model: model, adapter: LoRAAdapter(config: adapter.config, layers: adapter.layers.map { _ in [:] }))
        for chunk in stride(from: 0, to: mine.count, by: max(1, options.batchSize)) {
            let batch = PackedBatch(mine[chunk..<min(mine.count, chunk + options.batchSize)].map { (ids: $0.ids, labels: $0.labels) })
            count += batch.targetCount
            if batch.targetCount > 0 { loss += g.run(batch, lossScale: 1, grads: nil) }
        }
        if c.size > 1 {
            let sums = try c.sum([loss, Double(count)])
            (loss, count) = (sums[0], Int(sums[1]))
        }
        return count > 0 ? loss / Double(count) : .nan
    }
}
