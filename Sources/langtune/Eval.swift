import ArgumentParser
import Foundation
import LangTune

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how well a model (and an adapter) answers held-out questions, and in which language.",
        discussion: """
            For every question the reference answer's perplexity is measured (teacher-forced),
            then a greedy answer is generated (--batch-size questions decoded together) and
            compared with the references:
              exact match, F1   SQuAD v1.1 rules; Turkish lower-casing (İ→i, I→ı) for Turkish;
                                CMRC 2018 rules for Chinese (per-character, longest common substring)
              chrF, BLEU        sacrebleu's corpus scores (BLEU tokenizer 13a, zh for Chinese)
              ROUGE-L           F-measure over the same tokens as F1
              language fidelity share of answers in the expected language (or language-neutral,
                                like a number or a name); english_rate: share that switched to English
            Prompts are rendered as `train` renders them (same prompt and chat template) with the whole context, never trimmed around the reference answer as training trims: evaluation must not know where the answer is. A context too long for --max-seq-len (default: the model's context length) is asked about in overlapping windows chosen without the answer, and the answer is taken from the window whose greedy answer has the highest mean log-probability; the number of cut contexts is printed.
            Plain-text data (--format text) gets perplexity only.

            --grounded keeps every answer to a span of its context (the model can point, not invent); compare runs with and without it to see how much of the error is invention.

            --compare runs the base model and the adapted one on the same questions.
            --predictions scores a JSONL file of {"id", "prediction", "references", "language"} without a model.
            --output DIR writes results.json, predictions.jsonl and report.html (charts, sample answers).

            Examples:
              langtune eval --data ../shared/data/tquad/dev-v0.1.json --max-examples 200 --adapter runs/tr --compare --output eval-tr
              langtune eval --predictions answers.jsonl --json
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Evaluate the base model and the adapted one (--adapter) on the same questions.") var compare = false
    @Option(help: "Evaluation data file.") var data: String?
    @Option(help: "squad, alpaca, messages or text (default: detect).") var format: String?
    @Option(help: "Score this JSONL file of answers instead of running a model.") var predictions: String?
    @Option(name: .customLong("max-examples"), help: "Use only the first N examples.") var maxExamples: Int?
    @Option(name: .customLong("max-new-tokens"), help: "Longest generated answer, in tokens.") var maxNewTokens: Int = 64
    @Option(name: .customLong("batch-size"), help: "Questions decoded together.") var batchSize: Int = 8
    @Option(name: .customLong("max-seq-len"), help: "Longest prompt plus --max-new-tokens, in tokens (default: the model's context length); a longer context is asked about in windows chosen without the answer.")
    var maxSeqLen: Int?
    @Option(name: .customLong("prompt-template"), help: "SQuAD prompt with {context} and {question} (default: built-in per language).") var promptTemplate: String?
    @Option(help: "Language of the data: tr, zh or en (default: detect per question).") var language: String?
    @Option(help: "System message before every prompt.") var system: String?
    @Flag(help: "Answers must be spans of the question's context (extractive Q&A; see `generate --grounded`).") var grounded = false
    @Option(name: .customLong("report-samples"), help: "Questions shown in report.html.") var reportSamples: Int = 25
    @Option(help: "Folder for results.json, predictions.jsonl and report.html.") var output: String?
    @Flag(help: "Print the results as one JSON object.") var json = false

    func validate() throws {
        if predictions == nil && data == nil { throw ValidationError("give --data FILE (or --predictions FILE to score existing answers)") }
        if predictions != nil && data != nil { throw ValidationError("--data and --predictions cannot be combined") }
        if compare && modelOptions.adapter == nil { throw ValidationError("--compare needs --adapter") }
        if let f = format, DatasetFormat(rawValue: f) == nil { throw ValidationError("--format must be squad, alpaca, messages or text") }
        if let m = maxExamples, m < 1 { throw ValidationError("--max-examples must be at least 1") }
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let m = maxSeqLen, m < 16 { throw ValidationError("--max-seq-len must be at least 16") }
    }

    func run() throws {
        if let predictions { return try scorePredictions(predictions) }
        let lm = try modelOptions.load()
        let raw = try DatasetReader.read(data!, format: format.flatMap(DatasetFormat.init(rawValue:)))
        let maxSeqLen = self.maxSeqLen ?? lm.model.config.maxPositionEmbeddings
        let options = EvalOptions(
            data: TrainingDataOptions(maxSeqLen: maxSeqLen, promptTemplate: promptTemplate, language: language,
                                      systemPrompt: system, labelAllAssistantTurns: false),
            maxExamples: maxExamples, maxNewTokens: maxNewTokens, batchSize: batchSize, grounded: grounded)
        let evaluator = Evaluator(options: options)
        let prep = try evaluator.items(raw, model: lm)
        guard !prep.items.isEmpty else {
            throw ValidationError("\(data!): no example fits \(maxSeqLen) tokens; raise --max-seq-len")
        }
        if prep.dropped > 0 {
            note("eval: \(prep.dropped) of \(min(raw.count, maxExamples ?? raw.count)) examples do not fit \(maxSeqLen) tokens and are left out; first: \(prep.droppedOrigins.prefix(3).joined(separator: ", "))")
        }
        let cut = prep.items.filter { !$0.windows.isEmpty }
        let qa = prep.items.filter { $0.kind == .qa }.count
        if qa > 0 {
            note("eval: \(cut.count) of \(qa) contexts do not fit \(maxSeqLen) tokens with \(maxNewTokens) to answer"
                 + (cut.isEmpty ? "; every question sees its whole context"
                    : " and are asked in \(cut.reduce(0) { $0 + $1.windows.count }) windows chosen without the answer"))
        }
        let adapter = lm.model.adapter
        var runs: [(label: String, results: [EvalItemResult])] = []
        if compare {
            lm.model.adapter = nil
            runs.append(("base", runEval(evaluator, prep.items, lm, label: "base")))
            lm.model.adapter = adapter
        }
        runs.append((adapter == nil ? "model" : "adapted", runEval(evaluator, prep.items, lm, label: adapter == nil ? "model" : "adapted")))
        let metrics = runs.map { EvalMetrics.aggregate(items: prep.items, results: $0.results) }
        try finish(items: prep.items, runs: runs, metrics: metrics,
                   facts: [("model", modelOptions.spec), ("adapter", modelOptions.adapter ?? "none"), ("data", data!),
                           ("questions", "\(prep.items.count)"), ("max new tokens", "\(maxNewTokens)"),
                           ("answers", grounded ? "grounded: spans of the context" : "free"),
                           ("contexts cut into windows", "\(cut.count) (limit \(maxSeqLen) tokens)"), ("date", Self.today())])
    }

    func runEval(_ evaluator: Evaluator, _ items: [EvalItem], _ lm: LanguageModel, label: String) -> [EvalItemResult] {
        let progress = ProgressLine()
        let start = Date()
        let results = evaluator.run(items, model: lm) { done, total in
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(done) * Double(total - done)
            progress.update("eval \(label): \(done)/\(total) | \(String(format: "%.1f", Double(done) / max(elapsed, 1e-9) * 60)) per min | \(clock(elapsed)) elapsed | ETA \(clock(eta))")
        }
        progress.finish()
        return results
    }

    func scorePredictions(_ path: String) throws {
        let rows = try PredictionsFile.read(path)
        let items = rows.map(\.item)
        let results = rows.map { EvalMetrics.score(prediction: $0.prediction, item: $0.item) }
        let metrics = [EvalMetrics.aggregate(items: items, results: results)]
        try finish(items: items, runs: [("predictions", results)], metrics: metrics,
                   facts: [("predictions", path), ("questions", "\(items.count)"), ("date", Self.today())])
    }

    /// Prints and writes the results: the last run is the main one, an earlier run is `base`.
    func finish(items: [EvalItem], runs: [(label: String, results: [EvalItemResult])], metrics: [EvalMetrics],
                facts: [(String, String)]) throws {
        let main = metrics.last!
        let base = metrics.count > 1 ? metrics[0] : nil
        let summary = EvalSummary(metrics: main, base: base, model: predictions == nil ? modelOptions.spec : nil,
                                  adapter: modelOptions.adapter, data: data ?? predictions!)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if json {
            print(String(decoding: try enc.encode(summary), as: UTF8.self))
        } else {
            printTable(runs.map(\.label), metrics)
        }
        guard let output else { return }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        try AtomicWrite.data(try enc.encode(summary) + Data("\n".utf8), to: output + "/results.json")
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines = Data()
        for (i, item) in items.enumerated() {
            let row = PredictionRow(item: item, result: runs.last!.results[i], base: runs.count > 1 ? runs[0].results[i] : nil)
            lines += try enc.encode(row) + Data("\n".utf8)
        }
        try AtomicWrite.data(lines, to: output + "/predictions.jsonl")
        let samples = ReportSample.rows(items: items, runs: runs.map(\.results), limit: reportSamples)
        let report = EvalReport(title: "LangTune evaluation", facts: facts, columns: runs.map(\.label), metrics: metrics,
                                curves: curves(), samples: samples)
        try AtomicWrite.text(report.html(), to: output + "/report.html")
        note("wrote \(output)/results.json, predictions.jsonl, report.html")
    }

    /// The adapter's training curves: `metrics.jsonl` in the adapter folder or the run folder above it (`run/best`).
    func curves() -> TrainingCurves? {
        guard let a = modelOptions.adapter, predictions == nil else { return nil }
        let url = URL(fileURLWithPath: a)
        return TrainingCurves.load(url.appendingPathComponent("metrics.jsonl").path)
            ?? TrainingCurves.load(url.deletingLastPathComponent().appendingPathComponent("metrics.jsonl").path)
    }

    func printTable(_ labels: [String], _ metrics: [EvalMetrics]) {
        func f(_ v: Double?, _ d: Int = 2) -> String { v.map { String(format: "%.\(d)f", $0) } ?? "–" }
        let pad = { (s: String) in s.padding(toLength: 12, withPad: " ", startingAt: 0) }
        print(pad("") + labels.map(pad).joined())
        let rows: [(String, (EvalMetrics) -> String)] = [
            ("examples", { "\($0.examples)" }), ("perplexity", { f($0.perplexity, 3) }), ("exact match", { f($0.exactMatch) }),
            ("F1", { f($0.f1) }), ("chrF", { f($0.chrf) }), ("BLEU", { f($0.bleu) }), ("ROUGE-L", { f($0.rougeL) }),
            ("language", { f($0.languageFidelity) }), ("english", { f($0.englishRate) }),
            ("cut", { $0.contextsCut.map(String.init) ?? "–" }),
        ]
        for (name, get) in rows { print(pad(name) + metrics.map { pad(get($0)) }.joined()) }
    }

    static func today() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date()) + " UTC"
    }
}

/// `--json` and results.json: the main model's metrics at the top level, `base` beside them.
struct EvalSummary: Encodable {
    let metrics: EvalMetrics
    let base: EvalMetrics?
    let model: String?
    let adapter: String?
    let data: String
    enum Keys: String, CodingKey { case base, model, adapter, data }
    func encode(to encoder: Encoder) throws {
        try metrics.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encodeIfPresent(base, forKey: .base)
        try c.encodeIfPresent(model, forKey: .model)
        try c.encodeIfPresent(adapter, forKey: .adapter)
        try c.encode(data, forKey: .data)
    }
}

/// One line of predictions.jsonl; it is also valid input for `eval --predictions`.
struct PredictionRow: Encodable {
    let item: EvalItem
    let result: EvalItemResult
    let base: EvalItemResult?
    enum Keys: String, CodingKey {
        case id, language, question, references, prediction, origin
        case exactMatch = "exact_match", f1, rougeL = "rouge_l", answerLanguage = "answer_language", nll, tokens, base
    }
    struct Answer: Encodable {
        let r: EvalItemResult
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encodeIfPresent(r.prediction, forKey: .prediction)
            try c.encodeIfPresent(r.exactMatch, forKey: .exactMatch)
            try c.encodeIfPresent(r.f1, forKey: .f1)
            try c.encodeIfPresent(r.rougeL, forKey: .rougeL)
            try c.encodeIfPresent(r.answerLanguage, forKey: .answerLanguage)
            try c.encode(r.nll, forKey: .nll)
            try c.encode(r.tokens, forKey: .tokens)
        }
    }
    func encode(to encoder: Encoder) throws {
        try Answer(r: result).encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(item.id, forKey: .id)
        try c.encode(item.language, forKey: .language)
        try c.encode(item.question, forKey: .question)
        try c.encode(item.references, forKey: .references)
        try c.encode(item.origin, forKey: .origin)
        if let base { try c.encode(Answer(r: base), forKey: .base) }
    }
}

/// One status line on stderr, rewritten in place on a terminal and printed every few seconds otherwise.
final class ProgressLine {
    private let tty = isatty(2) == 1
    private var last = Date.distantPast
    private var pending: String?
    func update(_ s: String) {
        if tty {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + s).utf8))
        } else if Date().timeIntervalSince(last) > 10 {
            note(s)
            last = Date()
            pending = nil
            return
        }
        pending = s
    }
    func finish() {
        if tty { FileHandle.standardError.write(Data("\n".utf8)) } else if let pending { note(pending) }
    }
}
