import ArgumentParser
import Dispatch
import Foundation
import LangTune

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model with LoRA on question-answer data; the loss is taken on answers only.",
        discussion: """
            Data formats (--format, detected when omitted):
              squad     SQuAD JSON (context, question, answers) rendered with a prompt
                        template in the data's language (--prompt-template to change it)
              alpaca    JSON array or JSONL of {"instruction", "input", "output"}
              messages  JSONL of {"messages": [{"role", "content"}, ...]}
              text      plain text for continued pre-training (documents split by blank lines)
            Conversations go through the model's own chat template. Over-long SQuAD
            examples have their context trimmed around the answer; others that do not
            fit --max-seq-len are dropped and counted.

            The output folder gets the adapter (Hugging Face PEFT format: adapter_config.json,
            adapter_model.safetensors), metrics.jsonl, checkpoint/ (for --resume) and, with
            validation, best/, and report.html (loss curves; with validation, the base and the
            trained model's answers to --report-examples questions). Ctrl-C saves a checkpoint and stops; --resume continues exactly.

            QLoRA (--method qlora) keeps the targeted projections 4-bit. --qlora-base auto (the
            default) keeps a GGUF's own quantized blocks (no second quantization error) and
            quantizes float weights to NF4 with double quantization, as bitsandbytes does; nf4
            re-quantizes a GGUF too. The NF4 base is cached under --qlora-cache (checked by
            checksum, rebuilt when stale), so the next run does not quantize again.

            Data parallel over MPI: `mpirun -np N langtune train ...` (or srun, mpiexec)
            is detected. Each rank takes its share of every step's --batch-size ×
            --grad-accum examples and the gradients are summed, so N ranks train what
            one process trains (up to float32 summation order); rank 0 writes the
            output folder. Threads per rank: the cores the launcher bound it to, or
            the machine's shared among its ranks. A rank that dies or hangs
            (--collective-timeout) ends the job; --resume continues from the last
            checkpoint on any number of ranks (the same number gives the bytes of an
            unbroken run).

            --time-budget 30m trains for that wall-clock time instead of a step count: steps go on (over as many epochs as it takes) while the next one and a final validation still fit, the learning-rate schedule is laid out over the time (warm-up in steps), and the run then validates, saves and reports as at the end of any run (report.html's answers come after the budget). With --steps too, whichever ends first.

            Examples:
              langtune train --data data/sample/tr_qa.json --output runs/tr
              langtune train --data ../shared/data/tquad/train-v0.1.json --val-split 0.02 --time-budget 30m --output runs/tr30
              langtune train --model default --data train.json --val-split 0.1 --rank 16 --alpha 32 \\
                  --steps 100 --batch-size 4 --eval-every 20 --output runs/tquad
              langtune train --model llama3-8b/ --data train.json --method qlora --checkpoint-activations \
                  --batch-size 1 --output runs/qlora
              mpirun -np 4 --host a,b,c,d langtune train --data train.json --batch-size 8 \
                  --save-every 50 --output runs/tr
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training data file.") var data: String
    @Option(help: "squad, alpaca, messages or text (default: detect).") var format: String?
    @Option(name: .customLong("max-examples"), help: "Use only the first N examples of --data.") var maxExamples: Int?
    @Option(name: .customLong("max-val-examples"), help: "Use only the first N examples of --val-data.") var maxValExamples: Int?
    @Option(name: .customLong("val-data"), help: "Validation data file (same format).") var valData: String?
    @Option(name: .customLong("val-split"), help: "Hold out this fraction of the training data for validation.") var valSplit: Double = 0
    @Option(help: "Fine-tuning method: lora, or qlora (the targeted base weights quantized to NF4).") var method: String = "lora"
    @Flag(name: .customLong("no-double-quant"), help: "QLoRA: keep the NF4 block scales in float32 instead of 8 bits.") var noDoubleQuant = false
    @Option(name: .customLong("qlora-base"), help: "QLoRA frozen base: auto (a GGUF's own quantized blocks when it has them, else NF4), nf4 (always bitsandbytes' NF4, re-quantizing a GGUF), or source (same as auto).")
    var qloraBase: String = "auto"
    @Option(name: .customLong("qlora-cache"), help: ArgumentHelp("QLoRA: folder that keeps the NF4 base between runs (checked by checksum, rebuilt when stale), or none.", valueName: "dir|none"))
    var qloraCache: String = QuantizedBaseCache.defaultRoot
    @Option(help: "LoRA rank.") var rank: Int = 16
    @Option(help: "LoRA alpha (scale = alpha / rank).") var alpha: Double = 32
    @Option(help: "LoRA dropout on the adapted layers' inputs.") var dropout: Double = 0
    @Option(help: "Adapted projections, from q,k,v,o,gate,up,down.") var targets: String = "q,k,v,o,gate,up,down"
    @Flag(name: .customLong("rslora"), help: "rsLoRA scaling: alpha / sqrt(rank).") var rsLoRA = false
    @Option(help: "Peak learning rate.") var lr: Double = 2e-4
    @Option(help: "constant, linear or cosine.") var schedule: String = "cosine"
    @Option(help: "Warm-up steps.") var warmup: Int = 0
    @Option(name: .customLong("weight-decay")) var weightDecay: Double = 0
    @Option(name: .customLong("max-grad-norm"), help: "Gradient clipping (0: off).") var maxGradNorm: Double = 1
    @Option(help: "Optimizer steps (overrides --epochs).") var steps: Int?
    @Option(help: "Passes over the data.") var epochs: Double = 1
    @Option(name: .customLong("time-budget"), help: ArgumentHelp("Train for this wall-clock time (90s, 30m, 1h30m) instead of --epochs.", valueName: "duration"))
    var timeBudget: String?
    @Option(name: .customLong("batch-size"), help: "Examples per micro-batch.") var batchSize: Int = 4
    @Option(name: .customLong("grad-accum"), help: "Micro-batches per optimizer step.") var gradAccum: Int = 1
    @Option(name: .customLong("max-seq-len"), help: "Longest example in tokens.") var maxSeqLen: Int = 512
    @Option(name: .customLong("eval-every"), help: "Validation loss every N steps (0: at the end only).") var evalEvery: Int = 0
    @Option(name: .customLong("save-every"), help: "Checkpoint every N steps (0: at the end only).") var saveEvery: Int = 0
    @Option(help: "Random seed (adapter init, data order, dropout).") var seed: UInt64 = 0
    @Option(help: "Output folder.") var output: String
    @Flag(help: "Continue the run in --output from its checkpoint.") var resume = false
    @Flag(name: .customLong("checkpoint-activations"), help: "Recompute activations in the backward pass (less memory).")
    var checkpointActivations = false
    @Option(name: .customLong("prompt-template"), help: "SQuAD prompt with {context} and {question}.") var promptTemplate: String?
    @Option(help: "Language of SQuAD data for the default prompt: tr, zh or en (default: detect).") var language: String?
    @Option(help: "System message for every example.") var system: String?
    @Option(name: .customLong("init-adapter"), help: "Start from this PEFT adapter instead of a fresh one.") var initAdapter: String?
    @Option(name: .customLong("export-batches"), help: "Write the exact batches of each step as JSONL and exit (for reference runs).")
    var exportBatches: String?
    @Option(name: .customLong("report-examples"), help: "Validation questions answered by the base and the trained model for report.html (0: curves only).")
    var reportExamples: Int = 20
    @Option(help: ArgumentHelp("Data-parallel training over MPI: auto (when mpirun, srun or mpiexec started this process), mpi, or none.",
                               valueName: "auto|mpi|none"))
    var distributed: String = "auto"
    @Option(name: .customLong("collective-timeout"), help: "Distributed: seconds a rank waits for the others in one exchange before it stops and the job ends (0: forever).")
    var collectiveTimeout: Double = 600

    func validate() throws {
        guard method == "lora" || method == "qlora" else { throw ValidationError("--method must be lora or qlora") }
        guard ["auto", "nf4", "source"].contains(qloraBase) else { throw ValidationError("--qlora-base must be auto, nf4 or source") }
        guard LRSchedule(rawValue: schedule) != nil else { throw ValidationError("--schedule must be constant, linear or cosine") }
        if let f = format, DatasetFormat(rawValue: f) == nil { throw ValidationError("--format must be squad, alpaca, messages or text") }
        if rank < 1 { throw ValidationError("--rank must be at least 1") }
        if let m = maxExamples, m < 1 { throw ValidationError("--max-examples must be at least 1") }
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1)") }
        if batchSize < 1 || gradAccum < 1 { throw ValidationError("--batch-size and --grad-accum must be at least 1") }
        if let s = steps, s < 1 { throw ValidationError("--steps must be at least 1") }
        if let t = timeBudget {
            guard let seconds = Self.seconds(t), seconds >= 1 else {
                throw ValidationError("--time-budget must be a duration like 90s, 30m or 1h30m (got \"\(t)\")")
            }
            if exportBatches != nil { throw ValidationError("--export-batches needs --steps, not --time-budget (the steps of a budget depend on speed)") }
        }
        if !(valSplit >= 0 && valSplit < 1) { throw ValidationError("--val-split must be in [0, 1)") }
        if maxSeqLen < 16 { throw ValidationError("--max-seq-len must be at least 16") }
        if reportExamples < 0 { throw ValidationError("--report-examples must be at least 0") }
        if DistributedLaunch.Mode(rawValue: distributed) == nil { throw ValidationError("--distributed must be auto, mpi or none") }
        if !(collectiveTimeout >= 0) { throw ValidationError("--collective-timeout must be at least 0") }
        for t in targets.split(separator: ",") where LoRATarget(short: String(t)) == nil {
            throw ValidationError("unknown target \"\(t)\"; use q,k,v,o,gate,up,down")
        }
    }

    var trainingOptions: TrainingOptions {
        var o = TrainingOptions()
        o.lora = LoRAConfig(rank: rank, alpha: alpha, dropout: dropout,
                            targets: targets.split(separator: ",").compactMap { LoRATarget(short: String($0)) },
                            useRSLoRA: rsLoRA, baseModel: modelOptions.spec)
        o.optimizer.learningRate = lr
        o.optimizer.weightDecay = weightDecay
        o.optimizer.maxGradNorm = maxGradNorm
        o.schedule = LRSchedule(rawValue: schedule)!
        o.warmupSteps = warmup
        o.steps = steps
        o.epochs = epochs
        o.timeBudget = timeBudget.flatMap(Self.seconds)
        o.batchSize = batchSize
        o.gradAccum = gradAccum
        o.evalEvery = evalEvery
        o.saveEvery = saveEvery
        o.seed = seed
        o.checkpointActivations = checkpointActivations
        o.method = method
        return o
    }

    func run() throws {
        let launch = DistributedLaunch()
        let collective = try launch.collective(DistributedLaunch.Mode(rawValue: distributed)!)
        do {
            try train(collective, launch: launch)
            collective.finish()
        } catch let exit as ExitCode {
            collective.finish()
            throw exit
        } catch {
            guard collective.size > 1 else { throw error }
            // The other ranks would wait for this one in their next collective: end the job.
            note("Error (rank \(collective.rank) of \(collective.size)): \(error)")
            collective.abort(code: 1)
        }
    }

    func train(_ collective: any Collective, launch: DistributedLaunch) throws {
        pinMallocThreshold()
        let root = collective.isRoot
        // Every rank has the same things to say: rank 0 says them.
        func say(_ s: String) { if root { note(s) } }
        var modelOptions = modelOptions
        if collective.size > 1, modelOptions.threads == nil { modelOptions.threads = launch.threadsPerRank }
        let quantization = method == "qlora"
            ? FrozenQuantization(targets: Set(targets.split(separator: ",").compactMap { LoRATarget(short: String($0)) }),
                                 doubleQuant: !noDoubleQuant, keepSourceBlocks: qloraBase != "nf4",
                                 cacheDirectory: qloraCache == "none" ? nil : qloraCache)
            : nil
        // Rank 0 fills the NF4 cache before the others read it, rather than all quantizing at once.
        let cacheFirst = quantization?.cacheDirectory != nil && collective.size > 1
        if cacheFirst && !root { try collective.barrier() }
        let lm = try modelOptions.load(quantization: quantization)
        try lm.files.config.requireTrainable(file: lm.files.path, for: "LoRA training")
        if cacheFirst && root { try collective.barrier() }
        let dataOptions = TrainingDataOptions(maxSeqLen: maxSeqLen, promptTemplate: promptTemplate, language: language, systemPrompt: system)
        let builder = TrainingDataBuilder(tokenizer: lm.tokenizer, template: lm.template, options: dataOptions)
        let fmt = format.flatMap(DatasetFormat.init(rawValue:))
        func read(_ path: String, limit: Int?) throws -> [RawExample] {
            let raw = try DatasetReader.read(path, format: fmt)
            return limit.map { Array(raw.prefix($0)) } ?? raw
        }
        let trainRaw = try read(data, limit: maxExamples)
        let (all, report) = try builder.build(trainRaw)
        say("data: \(report.summary)")
        for o in report.droppedOrigins.prefix(5) { say("  dropped: \(o)") }
        var trainSet = all, valSet: [TokenizedExample] = []
        var valRaw = trainRaw
        if let valData {
            valRaw = try read(valData, limit: maxValExamples)
            let (v, vr) = try builder.build(valRaw)
            valSet = v
            say("validation: \(vr.summary)")
        } else if valSplit > 0 {
            (trainSet, valSet) = BatchPlan.split(all, fraction: valSplit, seed: seed)
            say("validation: \(valSet.count) examples held out (--val-split \(valSplit))")
        }
        guard !trainSet.isEmpty else { throw DatasetError(file: data, "no training examples left after the validation split") }

        var opts = trainingOptions
        opts.frozenBase = lm.model.frozenBaseDescription
        let adapter: LoRAAdapter
        if let initAdapter {
            adapter = try LoRAAdapter.load(from: initAdapter, model: lm.files.config)
        } else {
            adapter = try LoRAAdapter(config: opts.lora, model: lm.files.config, seed: seed)
        }
        let out = URL(fileURLWithPath: output)
        let trainer = Trainer(model: lm.model, adapter: adapter, train: trainSet, validation: valSet, options: opts, output: out)

        if let exportBatches {
            if root { try export(trainer, to: exportBatches, model: lm.files.path) }
            return
        }

        trainer.collective = collective
        try collective.onRoot("prepare \(output)") {
            if !resume, FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint").path) {
                throw ValidationError("\(output) already holds a run; use --resume to continue it or choose another --output")
            }
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(opts).write(to: out.appendingPathComponent("train_config.json"), options: .atomic)
        }

        if collective.size > 1 {
            let t = lm.model.backend.threads.count
            say("distributed: \(collective.size) MPI ranks × \(t) thread\(t == 1 ? "" : "s"); each step's \(batchSize)×\(gradAccum) "
                + "examples are split across the ranks and their gradients summed")
        }
        (collective as? MPICollective)?.timeout = collectiveTimeout > 0 ? collectiveTimeout : nil
        let length = opts.timeBudget.map { b in "for \(clock(b))" + (steps.map { " (at most \($0) steps)" } ?? "") }
            ?? "\(trainer.totalSteps) steps"
        say("training: \(trainSet.count) examples, \(length) of \(batchSize)×\(gradAccum), "
             + "\(method == "qlora" ? "QLoRA (frozen base: \(opts.frozenBase ?? ""))" : "LoRA") r=\(rank) α=\(alpha) on \(opts.lora.targets.map(\.rawValue).joined(separator: ",")) "
             + "(\(adapter.parameterCount.formatted()) parameters), \(lm.model.backend.name)")
        let stop = StopFlag()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { stop.set(); note("\ninterrupt: finishing this step, saving a checkpoint…") }
        source.resume()
        let live = isatty(2) != 0 && root
        let summary = try trainer.run(resume: resume, progress: { p in
            let line = String(format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | %@ elapsed | ETA %@%@",
                              p.step, p.totalSteps, p.loss, p.lr, p.tokensPerSecond, clock(p.elapsed), clock(p.eta),
                              p.valLoss.map { String(format: " | val %.4f", $0) } ?? "")
            if live { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) }
            else if p.step == 1 || p.step % 10 == 0 || p.step == p.totalSteps || p.valLoss != nil { note(line) }
        }, shouldStop: { stop.isSet })
        if live { note("") }
        source.cancel()
        if collective.size > 1 {
            let t = collective.traffic
            note(String(format: "rank %d: %.2f s in collectives (%d calls, %.1f MB reduced or broadcast)", collective.rank, t.seconds, t.calls,
                        Double(t.bytes) / 1e6))
        }
        var lines = ["steps \(summary.steps)/\(summary.totalSteps), \(summary.tokens.formatted()) tokens in \(clock(summary.seconds))"]
        if let l = summary.finalLoss { lines.append(String(format: "last training loss %.4f", l)) }
        if let b = summary.baseValLoss, let v = summary.bestValLoss {
            lines.append(String(format: "validation loss: base %.4f → adapted %.4f (best, step %d)", b, v, summary.bestStep ?? 0))
        }
        lines.append(summary.interrupted ? "interrupted: continue with the same command plus --resume" : "adapter: \(summary.adapterPath)")
        say(lines.joined(separator: "\n"))
        if summary.interrupted { throw ExitCode(130) }
        guard root else { return }
        // The report asks the validation questions afresh, with whole contexts: the training
        // sequences may have been trimmed around the answer, which evaluation must not see.
        let valOrigins = Set(valSet.map(\.origin))
        try writeReport(lm: lm, validation: valRaw.filter { valOrigins.contains($0.origin) }, dataOptions: dataOptions,
                        frozenBase: opts.frozenBase ?? "", out: out)
    }

    /// report.html in the output folder: the loss curves and, with a validation set, the base and
    /// trained model's answers to its first --report-examples questions, side by side.
    func writeReport(lm: LanguageModel, validation: [RawExample], dataOptions: TrainingDataOptions, frozenBase: String,
                     out: URL) throws {
        let curves = TrainingCurves.load(out.appendingPathComponent("metrics.jsonl").path)
        var columns: [String] = [], metrics: [EvalMetrics] = [], samples: [ReportSample] = []
        if reportExamples > 0, !validation.isEmpty {
            var evalData = dataOptions
            evalData.maxSeqLen = lm.model.config.maxPositionEmbeddings
            evalData.labelAllAssistantTurns = false
            let evaluator = Evaluator(options: EvalOptions(data: evalData, maxExamples: reportExamples, maxNewTokens: 64, batchSize: 8))
            let items = try evaluator.items(validation, model: lm).items
            let trained = try LoRAAdapter.load(from: out.path, model: lm.files.config)
            var runs: [[EvalItemResult]] = []
            for (label, adapter) in [("base", nil), ("trained", trained)] as [(String, LoRAAdapter?)] {
                lm.model.adapter = adapter
                let progress = ProgressLine()
                runs.append(evaluator.run(items, model: lm) { done, total in progress.update("report: \(label) model, question \(done)/\(total)") })
                progress.finish()
                columns.append(label)
                metrics.append(EvalMetrics.aggregate(items: items, results: runs.last!))
            }
            samples = ReportSample.rows(items: items, runs: runs)
        }
        let facts = [("model", modelOptions.spec), ("data", data), ("method", "\(method == "qlora" ? "QLoRA" : "LoRA") r=\(rank) α=\(alpha), frozen base: \(frozenBase)"),
                     ("validation questions answered", "\(samples.count)"), ("date", Eval.today())]
        let report = EvalReport(title: "LangTune training run", facts: facts, columns: columns, metrics: metrics,
                                curves: curves, samples: samples)
        try AtomicWrite.text(report.html(), to: out.appendingPathComponent("report.html").path)
        note("report: \(out.appendingPathComponent("report.html").path)")
    }

    /// The batches of every step as JSONL (see Tests/Reference/peft_train.py).
    func export(_ trainer: Trainer, to path: String, model: String) throws {
        let o = trainer.options
        var lines: [String] = []
        func json(_ v: Any) throws -> String { String(decoding: try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]), as: UTF8.self) }
        lines.append(try json(["header": true, "model": model, "rank": o.lora.rank, "alpha": o.lora.alpha, "dropout": o.lora.dropout,
                               "targets": o.lora.targets.map(\.rawValue), "lr": o.optimizer.learningRate, "schedule": o.schedule.rawValue,
                               "warmup": o.warmupSteps, "weight_decay": o.optimizer.weightDecay,
                               "betas": [o.optimizer.beta1, o.optimizer.beta2], "eps": o.optimizer.eps,
                               "max_grad_norm": o.optimizer.maxGradNorm, "seed": o.seed, "steps": trainer.totalSteps,
                               "use_rslora": o.lora.useRSLoRA]))
        for s in 0..<trainer.totalSteps {
            let micro = trainer.nextStepBatches().map { batch in
                ["examples": batch.map { ["ids": $0.ids.map(Int.init), "labels": $0.labels.map(Int.init)] }]
            }
            lines.append(try json(["step": s, "lr": trainer.learningRate(at: s), "micro_batches": micro]))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        note("wrote \(trainer.totalSteps) steps of batches to \(path)")
    }
}

extension Train {
    /// Seconds in "90s", "30m", "1h30m", "1.5h" or a plain number of seconds; nil when malformed.
    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var total = 0.0, number = ""
        var any = false
        for ch in text.trimmingCharacters(in: .whitespaces) {
            if ch.isNumber || ch == "." {
                number.append(ch)
            } else if let u = units[ch], let v = Double(number) {
                total += v * u
                number = ""
                any = true
            } else {
                return nil
            }
        }
        if !number.isEmpty {
            guard !any, let v = Double(number) else { return nil }
            total += v
        }
        return total.isFinite && (any || !number.isEmpty) ? total : nil
    }
}

/// Set from the signal handler, read by the training loop.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// 83 s → "01:23"; hours when needed.
func clock(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "--:--" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%02d:%02d", t / 60, t % 60)
}
