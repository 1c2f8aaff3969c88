import ArgumentParser
import Foundation
import LangTune

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The default job: fine-tune a small multilingual model on a Turkish and Chinese Q&A sample, then compare answers.",
        discussion: """
            Trains a LoRA adapter (rank 16, all seven projections) on data/sample/tr_qa.json and data/sample/zh_qa.json for --epochs passes (a few minutes on two cores), holding out a few questions, then asks base and adapted model the held-out questions and shows both answers side by side with the reference. The adapter, metrics and checkpoint land in --output; run `langtune train` yourself for full control.

            The model is Gemma 3 270M (`gemma3-270m`), the one that answers better after fine-tuning (docs/EVALUATION.md); `--model smollm2-135m` (the default of the other commands) or any GGUF file or safetensors folder runs the same job on another model.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Folder with tr_qa.json and zh_qa.json.") var sample: String = "data/sample"
    @Option(help: "Where the adapter goes.") var output: String = "runs/demo"
    @Option(help: "Passes over the sample.") var epochs: Double = 2
    @Option(name: .customLong("max-tokens"), help: "Most new tokens per answer.") var maxTokens: Int = 40
    @Flag(name: .customLong("reuse"), help: "Reuse an adapter already in --output instead of training.") var reuse = false

    func run() throws {
        let spec = modelOptions.model ?? "gemma3-270m"
        let lm = try modelOptions.load(spec)
        note("model: \(lm.files.path)\nbackend: \(lm.model.backend.name)")
        let builder = TrainingDataBuilder(tokenizer: lm.tokenizer, template: lm.template, options: TrainingDataOptions())
        var raw: [RawExample] = []
        for f in ["tr_qa.json", "zh_qa.json"] {
            raw += try DatasetReader.read(URL(fileURLWithPath: sample).appendingPathComponent(f).path, format: .squad)
        }
        // Every 6th question is held out: the demo asks those, so answers are not just recalled.
        let held = raw.enumerated().filter { $0.offset % 6 == 5 }.map(\.element)
        let trainRaw = raw.enumerated().filter { $0.offset % 6 != 5 }.map(\.element)
        let (train, report) = try builder.build(trainRaw)
        let (validation, _) = try builder.build(held)
        note("data: \(report.summary)")
        let out = URL(fileURLWithPath: output)
        let adapterFile = out.appendingPathComponent("adapter_model.safetensors").path
        let adapter: LoRAAdapter
        if reuse && FileManager.default.fileExists(atPath: adapterFile) {
            adapter = try LoRAAdapter.load(from: out.path, model: lm.files.config)
            note("reusing the adapter in \(out.path)")
        } else {
            var opts = TrainingOptions()
            opts.lora = LoRAConfig(rank: 16, alpha: 32, baseModel: spec)
            opts.epochs = epochs
            opts.batchSize = 4
            opts.warmupSteps = 2
            opts.optimizer.learningRate = 1e-3
            opts.evalEvery = 5
            // Start afresh, but never delete a folder that is not an earlier training run.
            let fm = FileManager.default
            if fm.fileExists(atPath: out.path) {
                guard fm.fileExists(atPath: out.appendingPathComponent("checkpoint").path)
                        || (try? fm.contentsOfDirectory(atPath: out.path))?.isEmpty == true else {
                    throw ValidationError("\(out.path) exists and is not a LangTune run; choose another --output")
                }
                try fm.removeItem(at: out)
            }
            let fresh = try LoRAAdapter(config: opts.lora, model: lm.files.config, seed: 0)
            let trainer = Trainer(model: lm.model, adapter: fresh, train: train, validation: validation, options: opts, output: out)
            note("training LoRA on \(train.count) questions for \(trainer.totalSteps) steps…")
            let s = try trainer.run(resume: false, progress: { p in
                note(String(format: "  step %d/%d  loss %.3f  %.0f tok/s%@", p.step, p.totalSteps, p.loss, p.tokensPerSecond,
                            p.valLoss.map { String(format: "  held-out loss %.3f", $0) } ?? ""))
            }, shouldStop: { false })
            if let b = s.baseValLoss, let v = s.bestValLoss {
                note(String(format: "held-out answer loss: base %.3f → adapted %.3f", b, v))
            }
            adapter = try LoRAAdapter.load(from: out.path, model: lm.files.config)
        }
        print("")
        for ex in held {
            guard case .qa(let q) = ex.body else { continue }
            let messages = try builder.promptMessages(for: q, context: q.context)
            let ids = lm.tokenizer.encode(try lm.render(messages, addGenerationPrompt: true), addSpecialTokens: false)
            lm.model.adapter = nil
            let base = lm.generate(promptIds: ids, options: GenerationOptions(maxTokens: maxTokens)).text
            lm.model.adapter = adapter
            let tuned = lm.generate(promptIds: ids, options: GenerationOptions(maxTokens: maxTokens)).text
            print("Q: \(q.question)")
            print("   reference: \(q.answers.first ?? "")")
            print("   base:      \(oneLine(base))")
            print("   adapted:   \(oneLine(tuned))\n")
        }
        try writeReport(held: held, lm: lm, adapter: adapter, out: out, model: spec)
    }

    /// Scores base and adapted answers to the held-out questions and writes OUT/report.html.
    func writeReport(held: [RawExample], lm: LanguageModel, adapter: LoRAAdapter, out: URL, model: String) throws {
        var data = TrainingDataOptions()
        data.labelAllAssistantTurns = false
        let evaluator = Evaluator(options: EvalOptions(data: data, maxNewTokens: maxTokens, batchSize: 8))
        let items = try evaluator.items(held, model: lm).items
        guard !items.isEmpty else { return }
        lm.model.adapter = nil
        let base = evaluator.run(items, model: lm)
        lm.model.adapter = adapter
        let tuned = evaluator.run(items, model: lm)
        let metrics = [EvalMetrics.aggregate(items: items, results: base), EvalMetrics.aggregate(items: items, results: tuned)]
        func f(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "–" }
        print("held-out questions: \(items.count)        base   adapted")
        for (name, kp) in [("exact match", \EvalMetrics.exactMatch), ("F1", \EvalMetrics.f1), ("chrF", \EvalMetrics.chrf),
                           ("language fidelity", \EvalMetrics.languageFidelity), ("answer perplexity", \EvalMetrics.perplexity)] {
            print(name.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + f(metrics[0][keyPath: kp]).padding(toLength: 7, withPad: " ", startingAt: 0) + f(metrics[1][keyPath: kp]))
        }
        let samples = ReportSample.rows(items: items, runs: [base, tuned])
        let report = EvalReport(title: "LangTune demo", facts: [("model", model), ("data", sample), ("date", Eval.today())],
                                columns: ["base", "adapted"], metrics: metrics,
                                curves: TrainingCurves.load(out.appendingPathComponent("metrics.jsonl").path), samples: samples)
        let path = out.appendingPathComponent("report.html").path
        try AtomicWrite.text(report.html(), to: path)
        print("\nreport: \(path)")
    }

    func oneLine(_ s: String) -> String {
        var t = s
        while t.unicodeScalars.last == "\u{FFFD}" { t.unicodeScalars.removeLast() }  // a character cut by --max-tokens
        return t.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
    }
}
