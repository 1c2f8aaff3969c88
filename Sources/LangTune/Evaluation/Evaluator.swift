import Foundation

/// One question (or text window) ready to evaluate.
public struct EvalItem: Sendable {
    public enum Kind: String, Sendable, Codable { case qa, text }
    public var id: String
    public var origin: String
    public var kind: Kind
    /// `tr`, `zh`, `en`: what the answer should be written in and how it is compared.
    public var language: String
    /// The question (or last user message) shown in reports.
    public var question: String
    /// What the model is given: the rendered prompt ending in the generation prompt (QA),
    /// or the whole window (text).
    public var promptIds: [Int]
    /// The teacher-forced target tokens after the prompt: the answer and its end-of-turn token.
    public var answerIds: [Int]
    public var references: [String]
    /// The QA context of `promptIds` (nil for other kinds), for `--grounded` answers.
    public var context: String? = nil
    /// When the whole context does not fit: the prompts of overlapping context windows, chosen
    /// without looking at the answer (`promptIds`/`answerIds` are the first). The item's answer
    /// is the greedy answer of the window the model is surest of. Empty when nothing was cut.
    public var windows: [EvalPrompt] = []
}

/// One way of asking a question: the prompt, and the reference answer's tokens after it.
public struct EvalPrompt: Sendable, Equatable {
    public var promptIds: [Int]
    public var answerIds: [Int]
    /// The context the prompt holds (QA), for `--grounded` answers.
    public var context: String?
}

/// The outcome for one item.
public struct EvalItemResult: Sendable, Codable {
    public var prediction: String?
    /// Negative log-likelihood summed over the target tokens, and how many there were.
    public var nll: Double
    public var tokens: Int
    public var exactMatch: Double?
    public var f1: Double?
    public var rougeL: Double?
    public var answerLanguage: AnswerLanguage?
    /// For a cut context: the window the answer came from, and how many there were.
    public var window: Int?
    public var windows: Int?
}

/// How `Evaluator` builds items and generates.
public struct EvalOptions: Sendable {
    /// Prompt construction: the same template and rendering as training (`TrainingDataBuilder`).
    /// `maxSeqLen` bounds a prompt plus `maxNewTokens`; a QA context that does not fit is asked
    /// about in windows chosen blind to the answer (`BlindContextWindows`), never trimmed
    /// around the answer as in training.
    public var data: TrainingDataOptions
    public var maxExamples: Int?
    public var maxNewTokens: Int
    /// Questions decoded together.
    public var batchSize: Int
    /// Answers to QA questions must be spans of the context they were asked about (`GroundedSpan`).
    public var grounded: Bool
    public init(data: TrainingDataOptions = TrainingDataOptions(labelAllAssistantTurns: false), maxExamples: Int? = nil,
                maxNewTokens: Int = 64, batchSize: Int = 8, grounded: Bool = false) {
        self.data = data
        self.maxExamples = maxExamples
        self.maxNewTokens = maxNewTokens
        self.batchSize = batchSize
        self.grounded = grounded
    }
}

/// Aggregate scores, 0-100 except perplexity; nil where the data has nothing to measure it on.
public struct EvalMetrics: Sendable, Codable, Equatable {
    public var examples: Int
    public var perplexity: Double?
    public var exactMatch: Double?
    public var f1: Double?
    public var chrf: Double?
    public var bleu: Double?
    public var rougeL: Double?
    public var languageFidelity: Double?
    /// Share of answers judged to be English.
    public var englishRate: Double?
    /// How many answers fell in each `AnswerLanguage` class.
    public var answerLanguages: [String: Int]?
    /// Questions whose context did not fit and were asked in windows.
    public var contextsCut: Int?

    enum CodingKeys: String, CodingKey {
        case examples, perplexity, f1, chrf, bleu
        case exactMatch = "exact_match", rougeL = "rouge_l", languageFidelity = "language_fidelity"
        case englishRate = "english_rate", answerLanguages = "answer_languages", contextsCut = "contexts_cut"
    }

    public init(examples: Int) { self.examples = examples }

    /// Explicit `null`s, so every key of the documented shape is always present.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(examples, forKey: .examples)
        for (v, k) in [(perplexity, CodingKeys.perplexity), (exactMatch, .exactMatch), (f1, .f1), (chrf, .chrf), (bleu, .bleu),
                       (rougeL, .rougeL), (languageFidelity, .languageFidelity), (englishRate, .englishRate)] {
            if let v, v.isFinite { try c.encode(v, forKey: k) } else { try c.encodeNil(forKey: k) }
        }
        if let answerLanguages { try c.encode(answerLanguages, forKey: .answerLanguages) } else { try c.encodeNil(forKey: .answerLanguages) }
        if let contextsCut { try c.encode(contextsCut, forKey: .contextsCut) } else { try c.encodeNil(forKey: .contextsCut) }
    }

    /// Scores from per-item results; `items[i]` belongs to `results[i]`.
    public static func aggregate(items: [EvalItem], results: [EvalItemResult]) -> EvalMetrics {
        var m = EvalMetrics(examples: items.count)
        let nll = results.reduce(0) { $0 + $1.nll }, count = results.reduce(0) { $0 + $1.tokens }
        if count > 0 { m.perplexity = exp(nll / Double(count)) }
        let qa = zip(items, results).filter { $0.0.kind == .qa && $0.1.prediction != nil }
        guard !qa.isEmpty else { return m }
        m.contextsCut = qa.filter { !$0.0.windows.isEmpty }.count
        let n = Double(qa.count)
        m.exactMatch = qa.reduce(0) { $0 + ($1.1.exactMatch ?? 0) } / n
        m.f1 = qa.reduce(0) { $0 + ($1.1.f1 ?? 0) } / n
        m.rougeL = qa.reduce(0) { $0 + ($1.1.rougeL ?? 0) } / n
        var chrf = CHRF(), bleu = BLEU()
        var langs: [String: Int] = [:]
        for (item, r) in qa {
            chrf.add(r.prediction!, references: item.references)
            bleu.add(r.prediction!, references: item.references, language: item.language)
            if let l = r.answerLanguage { langs[l.rawValue, default: 0] += 1 }
        }
        m.chrf = chrf.score
        m.bleu = bleu.score
        let faithful = qa.filter { $0.1.answerLanguage?.faithful ?? false }.count
        m.languageFidelity = 100 * Double(faithful) / n
        m.englishRate = 100 * Double(langs[AnswerLanguage.english.rawValue] ?? 0) / n
        m.answerLanguages = langs
        return m
    }

    /// Per-item metrics for an answer.
    public static func score(prediction: String, item: EvalItem) -> EvalItemResult {
        EvalItemResult(prediction: prediction, nll: 0, tokens: 0,
                       exactMatch: QAMetrics.exactMatch(prediction, item.references, language: item.language),
                       f1: QAMetrics.f1(prediction, item.references, language: item.language),
                       rougeL: QAMetrics.rougeL(prediction, item.references, language: item.language),
                       answerLanguage: AnswerLanguage.classify(prediction, expected: item.language))
    }
}

/// Builds evaluation items from a dataset and runs a model over them: teacher-forced
/// likelihood of the reference answers, then greedy answers decoded several at a time.
public struct Evaluator: Sendable {
    public let options: EvalOptions

    public init(options: EvalOptions) { self.options = options }

    /// What `items` did with the raw examples: how many were kept and why others were not.
    public struct Preparation: Sendable {
        public var items: [EvalItem]
        public var dropped: Int
        public var droppedOrigins: [String]
    }

    /// Tokenizes the first `maxExamples` examples with the model's template, rendered as training
    /// renders them (same prompt template and chat template). A QA context is never trimmed
    /// around the answer: the whole context when the prompt and `maxNewTokens` fit
    /// `data.maxSeqLen`, else windows chosen blind to the answer (`BlindContextWindows`).
    public func items(_ raw: [RawExample], model lm: LanguageModel) throws -> Preparation {
        let builder = TrainingDataBuilder(tokenizer: lm.tokenizer, template: lm.template, options: options.data)
        try builder.validateOptions(files: TrainingDataBuilder.fileList(raw))
        var out: [EvalItem] = []
        var dropped = 0
        var droppedOrigins: [String] = []
        for example in raw.prefix(options.maxExamples ?? raw.count) {
            if case .qa(let item) = example.body {
                if let e = try question(item, origin: example.origin, builder: builder) {
                    out.append(e)
                } else {
                    dropped += 1
                    if droppedOrigins.count < 10 { droppedOrigins.append(example.origin) }
                }
                continue
            }
            guard case .kept(let seqs, _) = try builder.tokenize(example) else {
                dropped += 1
                if droppedOrigins.count < 10 { droppedOrigins.append(example.origin) }
                continue
            }
            for (k, s) in seqs.enumerated() {
                let ids = s.ids.map(Int.init)
                switch example.body {
                case .qa:
                    continue
                case .chat(let messages):
                    guard let first = firstLabel(s), let answer = messages.last(where: { $0.role == "assistant" }) else { continue }
                    let user = messages.last(where: { $0.role == "user" })?.content ?? ""
                    out.append(EvalItem(id: Self.shortOrigin(example.origin), origin: example.origin, kind: .qa,
                                        language: options.data.language ?? QAPrompt.detectLanguage(user + "\n" + answer.content),
                                        question: user, promptIds: Array(ids[..<first]), answerIds: Array(ids[first...]),
                                        references: [answer.content]))
                case .text(let text):
                    out.append(EvalItem(id: Self.shortOrigin(example.origin) + (seqs.count > 1 ? "#\(k)" : ""),
                                        origin: example.origin, kind: .text,
                                        language: options.data.language ?? QAPrompt.detectLanguage(text),
                                        question: String(text.prefix(120)), promptIds: ids, answerIds: [], references: []))
                }
            }
        }
        return Preparation(items: out, dropped: dropped, droppedOrigins: droppedOrigins)
    }

    /// A SQuAD question as an item: the whole context, or blind windows of it; nil when no
    /// prompt fits (or the item has no answer to score).
    func question(_ item: QAItem, origin: String, builder: TrainingDataBuilder) throws -> EvalItem? {
        let answer = (item.answers.first ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !answer.isEmpty else { return nil }
        let limit = options.data.maxSeqLen
        // Rendered once per context text: window search and the final prompts ask the same texts.
        var asked: [String: EvalPrompt?] = [:]
        func ask(_ context: String) throws -> EvalPrompt? {
            if let known = asked[context] { return known }
            let s = try builder.qaSequence(item, answer: answer, context: context, origin: origin)
            let ids = s.ids.map(Int.init)
            let p = firstLabel(s).map { EvalPrompt(promptIds: Array(ids[..<$0]), answerIds: Array(ids[$0...]), context: context) }
            asked[context] = p
            return p
        }
        func fits(_ p: EvalPrompt?) -> Bool { p.map { $0.promptIds.count + options.maxNewTokens <= limit } ?? false }
        var prompts: [EvalPrompt] = []
        let whole = try ask(item.context)
        let cut = !fits(whole)
        if !cut {
            prompts = [whole!]
        } else {
            // Room for the context: the limit less the prompt around an empty context and the answer's room.
            guard let bare = try ask("") else { return nil }
            let budget = limit - bare.promptIds.count - options.maxNewTokens
            guard budget >= 8 else { return nil }
            let windows = BlindContextWindows(item.context, budget: budget) { builder.tokenizer.encode($0, addSpecialTokens: false).count }
            for text in try windows.windows(fits: { fits(try ask($0)) }, budget: budget) {
                guard let p = try ask(text), fits(p) else { return nil }
                prompts.append(p)
            }
        }
        guard let first = prompts.first else { return nil }
        return EvalItem(id: item.id, origin: origin, kind: .qa, language: builder.language(of: item), question: item.question,
                        promptIds: first.promptIds, answerIds: first.answerIds, references: item.answers,
                        context: first.context, windows: cut ? prompts : [])
    }

    func firstLabel(_ s: TokenizedExample) -> Int? {
        s.labels.indices.first { $0 >= 1 && s.labels[$0] != TokenizedExample.ignoreIndex }
    }

    static func shortOrigin(_ origin: String) -> String {
        let file = TrainingDataBuilder.file(of: origin)
        let name = URL(fileURLWithPath: file).lastPathComponent
        return name + (TrainingDataBuilder.location(of: origin).map { ":" + $0 } ?? "")
    }

    /// Runs the model (with whatever adapter it has set) over `items`. `progress(done, total)`
    /// is called after each item finishes.
    public func run(_ items: [EvalItem], model lm: LanguageModel, progress: ((Int, Int) -> Void)? = nil) -> [EvalItemResult] {
        var results = [EvalItemResult?](repeating: nil, count: items.count)
        var done = 0
        // Every prompt to answer: one per item, one per window of a cut context.
        var rows: [(item: Int, window: Int, prompt: EvalPrompt)] = []
        for (i, item) in items.enumerated() where item.kind == .qa {
            if item.windows.isEmpty {
                rows.append((i, 0, EvalPrompt(promptIds: item.promptIds, answerIds: item.answerIds, context: item.context)))
            } else {
                rows += item.windows.enumerated().map { (i, $0.offset, $0.element) }
            }
        }
        var answers = [[RowAnswer]](repeating: [], count: items.count)
        var nextRow = 0
        for (i, item) in items.enumerated() {
            if item.kind == .text {
                results[i] = textLikelihood(item, lm)
                done += 1
                progress?(done, items.count)
                continue
            }
            // Decode the rows of the items up to this one, batchSize at a time.
            while nextRow < rows.count && rows[nextRow].item <= i {
                let group = Array(rows[nextRow..<min(rows.count, nextRow + max(options.batchSize, 1))])
                nextRow += group.count
                for (row, answer) in zip(group, answerRows(group.map(\.prompt), lm)) {
                    answers[row.item].append(answer)
                    let windows = max(items[row.item].windows.count, 1)
                    guard answers[row.item].count == windows else { continue }
                    results[row.item] = choose(answers[row.item], item: items[row.item], lm)
                    answers[row.item] = []
                    done += 1
                    progress?(done, items.count)
                }
            }
        }
        return results.map { $0! }
    }

    /// One prompt's outcome: the reference's teacher-forced NLL, the greedy answer and how
    /// sure the model was of it (mean log-probability of its tokens and its end).
    struct RowAnswer {
        var nll: Double
        var tokens: Int
        var ids: [Int]
        var meanLogprob: Double
    }

    /// The item's result from its rows: the only one, or the window whose answer the model is surest of.
    func choose(_ rows: [RowAnswer], item: EvalItem, _ lm: LanguageModel) -> EvalItemResult {
        let best = rows.indices.max { rows[$0].meanLogprob < rows[$1].meanLogprob }!
        var text = lm.tokenizer.decode(rows[best].ids, skipSpecialTokens: true)
        // An answer cut by --max-new-tokens can end inside a UTF-8 sequence; drop the partial character.
        while text.unicodeScalars.last == "\u{FFFD}" { text.unicodeScalars.removeLast() }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var r = EvalMetrics.score(prediction: text, item: item)
        r.nll = rows[best].nll
        r.tokens = rows[best].tokens
        if !item.windows.isEmpty { r.window = best; r.windows = rows.count }
        return r
    }

    /// Teacher-forced likelihood of each prompt's reference answer, then greedy answers decoded together.
    func answerRows(_ prompts: [EvalPrompt], _ lm: LanguageModel) -> [RowAnswer] {
        let V = lm.model.vocabSize
        var caches: [KVCache] = []
        var logits: [[Float]] = []
        var partial: [RowAnswer] = []
        for p in prompts {
            let cache = KVCache(config: lm.model.config, capacity: p.promptIds.count + max(p.answerIds.count, options.maxNewTokens) + 1)
            let first = lm.model.forward(p.promptIds, cache: cache, logits: .last)
            var nll = 0.0
            if !p.answerIds.isEmpty {
                nll -= logSoftmax(first, row: 0, vocab: V, index: p.answerIds[0])
                if p.answerIds.count > 1 {
                    let rest = lm.model.forward(Array(p.answerIds.dropLast()), cache: cache, logits: .all)
                    for t in 1..<p.answerIds.count { nll -= logSoftmax(rest, row: t - 1, vocab: V, index: p.answerIds[t]) }
                }
                cache.length = p.promptIds.count
            }
            caches.append(cache)
            logits.append(first)
            partial.append(RowAnswer(nll: nll, tokens: p.answerIds.count, ids: [], meanLogprob: 0))
        }
        let spans = prompts.map { p in options.grounded ? p.context.map(GroundedSpan.init) : nil }
        let decoded = greedyDecode(lm, caches: caches, firstLogits: logits, stops: lm.stopTokenIds, grounding: spans)
        for k in partial.indices {
            partial[k].ids = decoded[k].ids
            partial[k].meanLogprob = decoded[k].logprob / Double(max(decoded[k].scored, 1))
        }
        return partial
    }

    /// Greedy decoding of several sequences, one shared step for all still running: the ids,
    /// and the summed log-probability of the chosen tokens (and of the end, when reached).
    /// `grounding[k]`, when given, keeps sequence k's answer to a span of its text.
    func greedyDecode(_ lm: LanguageModel, caches: [KVCache], firstLogits: [[Float]], stops: Set<Int>,
                      grounding: [GroundedSpan?] = []) -> [(ids: [Int], logprob: Double, scored: Int)] {
        let V = lm.model.vocabSize
        var out = [(ids: [Int], logprob: Double, scored: Int)](repeating: ([], 0, 0), count: caches.count)
        var spans = [GroundedSpan.State](repeating: GroundedSpan.State(), count: caches.count)
        var active = Array(caches.indices)
        // Row k of `logits` belongs to active[k].
        var logits = firstLogits.flatMap { $0 }
        for _ in 0..<options.maxNewTokens {
            var next: [Int] = []
            var still: [Int] = []
            for (k, s) in active.enumerated() {
                let id: Int
                if s < grounding.count, let g = grounding[s] {
                    // Nothing allowed: the answer reached the end of the text; it ends there.
                    guard let (chosen, state) = g.best(logits[(k * V)..<((k + 1) * V)], state: spans[s], tokenizer: lm.tokenizer,
                                                       stops: stops) else { continue }
                    id = chosen
                    spans[s] = state
                } else {
                    id = argmax(logits, row: k, vocab: V)
                }
                out[s].logprob += logSoftmax(logits, row: k, vocab: V, index: id)
                out[s].scored += 1
                if stops.contains(id) { continue }
                out[s].ids.append(id)
                if out[s].ids.count < options.maxNewTokens { still.append(s); next.append(id) }
            }
            active = still
            if active.isEmpty { break }
            logits = lm.model.decodeStep(next, caches: active.map { caches[$0] })
        }
        return out
    }

    func argmax(_ x: [Float], row: Int, vocab: Int) -> Int {
        let base = row * vocab
        var best = 0
        for i in 1..<vocab where x[base + i] > x[base + best] { best = i }
        return best
    }

    func textLikelihood(_ item: EvalItem, _ lm: LanguageModel) -> EvalItemResult {
        let ids = item.promptIds
        guard ids.count > 1 else { return EvalItemResult(prediction: nil, nll: 0, tokens: 0) }
        let cache = KVCache(config: lm.model.config, capacity: ids.count)
        let logits = lm.model.forward(ids, cache: cache, logits: .all)
        var nll = 0.0
        for t in 1..<ids.count { nll -= logSoftmax(logits, row: t - 1, vocab: lm.model.vocabSize, index: ids[t]) }
        return EvalItemResult(prediction: nil, nll: nll, tokens: ids.count - 1)
    }
}
