import Foundation

/// What the progress callback sees after each step.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Double
    public var lr: Double
    public var tokensPerSecond: Double
    public var elapsed: Double
    public var eta: Double
    public var valLoss: Double?
}

/// Saved state of a run, enough to continue it exactly.
struct TrainerState: Codable {
    var step: Int
    var epoch: Int
    var batchIndex: Int
    var options: TrainingOptions
    var bestValLoss: Double?
    var bestStep: Int?
    var baseValLoss: Double?
    var elapsed: Double
    var tokens: Int
    var trainExamples: Int
}

extension Trainer {
    var checkpointDir: URL { output.appendingPathComponent("checkpoint") }
    var bestDir: URL { output.appendingPathComponent("best") }
    var metricsURL: URL { output.appendingPathComponent("metrics.jsonl") }

    /// Writes adapter, optimizer moments and position into `checkpoint/`,
    /// replacing the previous one only once the new one is complete.
    func saveCheckpoint(_ state: TrainerState) throws {
        let fm = FileManager.default
        let tmp = output.appendingPathComponent(".checkpoint-\(getpid())")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        try adapter.save(to: tmp.path)
        var w = SafetensorsWriter(metadata: ["format": "langtune-optimizer", "step": String(optimizer.step)])
        for (i, (m, v)) in zip(optimizer.m, optimizer.v).enumerated() {
            try w.addTensor(name: "m.\(i)", shape: [m.count], values: m.array, as: .f32)
            try w.addTensor(name: "v.\(i)", shape: [v.count], values: v.array, as: .f32)
        }
        try w.write(to: tmp.appendingPathComponent("optimizer.safetensors").path)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(state).write(to: tmp.appendingPathComponent("state.json"), options: .atomic)
        let old = output.appendingPathComponent(".checkpoint-old")
        try? fm.removeItem(at: old)
        if fm.fileExists(atPath: checkpointDir.path) { try fm.moveItem(at: checkpointDir, to: old) }
        try fm.moveItem(at: tmp, to: checkpointDir)
        try? fm.removeItem(at: old)
    }

    /// Loads `checkpoint/` (or the previous one if a save was cut short) into this trainer.
    func loadCheckpoint() throws -> TrainerState {
        let fm = FileManager.default
        var dir = checkpointDir
        if !fm.fileExists(atPath: dir.appendingPathComponent("state.json").path) {
            let old = output.appendingPathComponent(".checkpoint-old")
            guard fm.fileExists(atPath: old.appendingPathComponent("state.json").path) else {
                throw LoRAError("\(checkpointDir.path): no checkpoint to resume from")
            }
            dir = old
        }
        let state: TrainerState
        do {
            state = try JSONDecoder().decode(TrainerState.self, from: Data(contentsOf: dir.appendingPathComponent("state.json")))
        } catch {
            throw LoRAError("\(dir.path)/state.json: unreadable checkpoint state (\(error))")
        }
        guard state.options == options else {
            throw LoRAError("\(dir.path): the checkpoint was made with other training settings; resume with the same command")
        }
        guard state.trainExamples == train.count else {
            throw LoRAError("\(dir.path): the checkpoint was made on \(state.trainExamples) training examples, this run has \(train.count)")
        }
        let saved = try LoRAAdapter.load(from: dir.path, model: model.config)
        for (l, layer) in adapter.layers.enumerated() {
            for (t, w) in layer {
                guard let s = saved.layers[l][t], s.a.count == w.a.count, s.b.count == w.b.count else {
                    throw LoRAError("\(dir.path): adapter does not match (layer \(l) \(t.rawValue))")
                }
                w.a.pointer.update(from: s.a.pointer, count: w.a.count)
                w.b.pointer.update(from: s.b.pointer, count: w.b.count)
            }
        }
        let opt = try SafetensorsFile(path: dir.appendingPathComponent("optimizer.safetensors").path)
        var ms: [[Float]] = [], vs: [[Float]] = []
        for i in 0..<optimizer.m.count {
            ms.append(try dequantize(try opt.tensor("m.\(i)")))
            vs.append(try dequantize(try opt.tensor("v.\(i)")))
        }
        try optimizer.restore(step: state.step, m: ms, v: vs)
        epoch = state.epoch
        batchIndex = state.batchIndex
        plan = BatchPlan(lengths: train.map(\.ids.count), batchSize: options.batchSize, seed: options.seed, epoch: epoch)
        return state
    }

    /// Trains to the end (or until `shouldStop` says so, after saving a checkpoint).
    /// Writes `metrics.jsonl`, `checkpoint/`, `best/` (with validation) and the final
    /// adapter in `output` itself: the best one by validation loss when there is
    /// validation data, else the last. With several ranks (`collective`), rank 0 alone reads
    /// the checkpoint, writes files and reports progress; the others train in step with it.
    public func run(resume: Bool, progress: (TrainingProgress) -> Void, shouldStop: () -> Bool) throws -> TrainingSummary {
        let fm = FileManager.default
        let c = collective
        if c.size > 1 {
            try RunFingerprint(options: options, train: train, validation: validation, model: model).agree(over: c)
        }
        var state = TrainerState(step: 0, epoch: 0, batchIndex: 0, options: options, bestValLoss: nil, bestStep: nil,
                                 baseValLoss: nil, elapsed: 0, tokens: 0, trainExamples: train.count)
        var metrics: MetricsWriter?
        try c.onRoot("read the checkpoint") {
            try fm.createDirectory(at: output, withIntermediateDirectories: true)
            if resume {
                state = try loadCheckpoint()
                try truncateMetrics(after: state.step)
            } else {
                try? fm.removeItem(at: metricsURL)
            }
            metrics = try MetricsWriter(url: metricsURL)
        }
        if c.size > 1 { state = try shareState(state) }
        // Seconds one validation pass takes: a time-budgeted run keeps that much for its last one.
        var validationSeconds = 0.0
        if !resume && !validation.isEmpty {
            let v0 = Date()
            let base = try evaluate(validation, withAdapter: false)
            validationSeconds = Date().timeIntervalSince(v0)
            state.baseValLoss = base
            // A fresh adapter (B = 0) is the base model: no second pass needed.
            let startsAtBase = adapter.layers.allSatisfy { $0.values.allSatisfy { w in (0..<w.b.count).allSatisfy { w.b.pointer[$0] == 0 } } }
            let start = startsAtBase ? base : try evaluate(validation)
            try metrics?.write(TrainingMetrics(step: 0, elapsed: 0, valLoss: start))
        }
        let total = totalSteps
        let start = Date().addingTimeInterval(-state.elapsed)
        var lastLoss: Double? = nil
        var interrupted = false
        var recentTokens: [(Double, Int)] = []
        let budget = options.timeBudget
        // With a budget: the seconds the steps may use (the last validation's share kept back).
        func trainingSeconds() -> Double { max(1, (budget ?? 0) - (validation.isEmpty ? 0 : validationSeconds)) }
        var last = state.step >= total
        while !last {
            if try agreedStop(shouldStop()) { interrupted = true; break }
            let t0 = Date()
            let inCollectives = c.traffic.seconds
            let batches = nextStepBatches()
            let lr = budget == nil ? learningRate(at: state.step)
                : learningRate(at: state.step, elapsed: Date().timeIntervalSince(start), of: trainingSeconds())
            let (loss, norm, tokens) = try step(batches, lr: lr)
            state.step = optimizer.step
            state.tokens += tokens
            state.epoch = epoch
            state.batchIndex = batchIndex
            lastLoss = loss
            let dt = Date().timeIntervalSince(t0)
            recentTokens.append((dt, tokens))
            if recentTokens.count > 10 { recentTokens.removeFirst() }
            let tps = Double(recentTokens.reduce(0) { $0 + $1.1 }) / max(recentTokens.reduce(0) { $0 + $1.0 }, 1e-9)
            let elapsed = Date().timeIntervalSince(start)
            state.elapsed = elapsed
            // The last step: the step count is reached, or (with a budget) another step would not fit.
            let meanStep = recentTokens.reduce(0) { $0 + $1.0 } / Double(recentTokens.count)
            var estimatedTotal = total
            if budget != nil {
                let fits = Int(max(0, trainingSeconds() - elapsed) / max(meanStep, 1e-9))
                estimatedTotal = min(total, state.step + fits)
            }
            // Ranks decide together (they measure their own clocks).
            let outOfTime = budget != nil ? try agreedStop(estimatedTotal <= state.step) : false
            last = state.step >= total || outOfTime
            var val: Double? = nil
            if !validation.isEmpty && ((options.evalEvery > 0 && state.step % options.evalEvery == 0) || last) {
                let v0 = Date()
                val = try evaluate(validation)
                validationSeconds = Date().timeIntervalSince(v0)
                if state.bestValLoss.map({ val! < $0 }) ?? true {
                    state.bestValLoss = val
                    state.bestStep = state.step
                    if c.isRoot { try adapter.save(to: bestDir.path) }
                }
            }
            try metrics?.write(TrainingMetrics(step: state.step, loss: loss, lr: lr, gradNorm: norm, tokens: tokens,
                                               tokensPerSecond: tps, elapsed: elapsed, valLoss: val,
                                               collectiveSeconds: c.size > 1 ? c.traffic.seconds - inCollectives : nil))
            if c.isRoot {
                let eta = budget.map { max(0, $0 - elapsed) } ?? elapsed / Double(state.step) * Double(total - state.step)
                progress(TrainingProgress(step: state.step, totalSteps: last ? state.step : estimatedTotal, loss: loss, lr: lr,
                                          tokensPerSecond: tps, elapsed: elapsed, eta: eta, valLoss: val))
            }
            if options.saveEvery > 0 && state.step % options.saveEvery == 0 && !last {
                try checkReplicas()
                if c.isRoot { try saveCheckpoint(state) }
            }
        }
        try checkReplicas()
        if c.isRoot {
            try saveCheckpoint(state)
            // The final adapter: the best by validation loss if we measured one, else the last.
            if let _ = state.bestStep, fm.fileExists(atPath: bestDir.path), !interrupted {
                let best = try LoRAAdapter.load(from: bestDir.path, model: model.config)
                try best.save(to: output.path)
            } else {
                try adapter.save(to: output.path)
            }
        }
        return TrainingSummary(steps: state.step, totalSteps: budget != nil && !interrupted ? state.step : total, finalLoss: lastLoss, bestValLoss: state.bestValLoss,
                               bestStep: state.bestStep, baseValLoss: state.baseValLoss, tokens: state.tokens,
                               seconds: state.elapsed, interrupted: interrupted, adapterPath: output.path)
    }

    /// Whether any rank was asked to stop: all ranks must leave the loop at the same step.
    func agreedStop(_ here: Bool) throws -> Bool {
        guard collective.size > 1 else { return here }
        return try collective.sum([here ? 1 : 0])[0] > 0
    }

    /// Every rank's adapter must stay rank 0's: each applies the same AdamW step to the same summed
    /// gradients, which holds while MPI hands every rank the same sums. Checked before each
    /// checkpoint (one digest exchanged), so a checkpoint never stands for diverged replicas.
    func checkReplicas() throws {
        guard collective.size > 1 else { return }
        try RunFingerprint(name: "adapter", buffers: optimizer.params).agree(
            over: collective, hint: "the MPI library returned different sums to different ranks; resume from the last checkpoint")
    }

    /// Rank 0's position, adapter and optimizer moments on every rank. A fresh run then starts
    /// from one adapter whatever each rank initialized, and a resumed one from the checkpoint
    /// that only rank 0 read (other machines need not see the output folder).
    func shareState(_ state: TrainerState) throws -> TrainerState {
        let c = collective
        let shared = try JSONDecoder().decode(TrainerState.self, from: try c.broadcast(c.isRoot ? JSONEncoder().encode(state) : Data()))
        try c.broadcast(optimizer.params)
        try c.broadcast(optimizer.m)
        try c.broadcast(optimizer.v)
        if !c.isRoot {
            optimizer.step = shared.step
            epoch = shared.epoch
            batchIndex = shared.batchIndex
            plan = BatchPlan(lengths: train.map(\.ids.count), batchSize: options.batchSize, seed: options.seed, epoch: epoch)
        }
        return shared
    }

    /// Drops metric lines past `step` (they belong to the run that was cut short).
    func truncateMetrics(after step: Int) throws {
        guard let data = FileManager.default.contents(atPath: metricsURL.path) else { return }
        let keep = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let s = obj["step"] as? Int else { return false }
            return s <= step
        }
        try (keep.joined(separator: "\n") + (keep.isEmpty ? "" : "\n")).write(to: metricsURL, atomically: true, encoding: .utf8)
    }
}

/// Appends JSON lines, flushed at once so a killed run keeps its history.
final class MetricsWriter {
    let handle: FileHandle
    init(url: URL) throws {
        if !FileManager.default.fileExists(atPath: url.path) { FileManager.default.createFile(atPath: url.path, contents: nil) }
        handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
    }
    func write(_ m: TrainingMetrics) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        handle.write(try enc.encode(m) + Data("\n".utf8))
    }
    deinit { try? handle.close() }
}
