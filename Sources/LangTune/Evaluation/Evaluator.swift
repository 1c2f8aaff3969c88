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
}

/// How `Evaluator` builds items and generates.
public struct EvalOptions: Sendable {
    /// Prompt construction and trimming: the same rules as training (`TrainingDataBuilder`).
    public var data: TrainingDataOptions
    public var maxExamples: Int?
    public var maxNewTokens: Int
    /// Questions decoded together.
    public var batchSize: Int
    public init(data: TrainingDataOptions = TrainingDataOptions(labelAllAssistantTurns: false), maxExamples: Int? = nil,
                maxNewTokens: Int = 64, batchSize: Int = 8) {
        self.data = data
        self.maxExamples = maxExamples
        self.maxNewTokens = maxNewTokens
        self.batchSize = batchSize
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

    enum CodingKeys: String, CodingKey {
        case examples, perplexity, f1, chrf, bleu
        case exactMatch = "exact_match", rougeL = "rouge_l", languageFidelity = "language_fidelity"
        case englishRate = "english_rate", answerLanguages = "answer_languages"
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
    }

    /// Scores from per-item results; `items[i]` belongs to `results[i]`.
    public static func aggregate(items: [EvalItem], results: [EvalItemResult]) -> EvalMetrics {
        var m = EvalMetrics(examples: items.count)
        let nll = results.reduce(0) { $0 + $1.nll }, count = results.reduce(0) { $0 + $1.tokens }
        if count > 0 { m.perplexity = exp(nll / Double(count)) }
        let qa = zip(items, results).filter { $0.0.kind == .qa && $0.1.prediction != nil }
        guard !qa.isEmpty else { return m }
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

    /// Tokenizes the first `maxExamples` examples with the model's template, exactly as training
    /// renders them (same prompt template, same context trimming around the answer).
    public func items(_ raw: [RawExample], model lm: LanguageModel) throws -> Preparation {
        let builder = TrainingDataBuilder(tokenizer: lm.tokenizer, template: lm.template, options: options.data)
        try builder.validateOptions(files: TrainingDataBuilder.fileList(raw))
        var out: [EvalItem] = []
        var dropped = 0
        var droppedOrigins: [String] = []
        for example in raw.prefix(options.maxExamples ?? raw.count) {
            guard case .kept(let seqs, _) = try builder.tokenize(example) else {
                dropped += 1
                if droppedOrigins.count < 10 { droppedOrigins.append(example.origin) }
                continue
            }
            for (k, s) in seqs.enumerated() {
                let ids = s.ids.map(Int.init)
                switch example.body {
                case .qa(let item):
                    guard let first = firstLabel(s) else { continue }
                    out.append(EvalItem(id: item.id, origin: example.origin, kind: .qa, language: builder.language(of: item),
                                        question: item.question, promptIds: Array(ids[..<first]), answerIds: Array(ids[first...]),
                                        references: item.answers))
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

    /// Items from already tokenized examples (a training run's validation set): the prompt is
    /// everything before the first labelled token, the reference is the decoded answer, and
    /// the question shown is the end of the decoded prompt.
    public func items(tokenized: [TokenizedExample], tokenizer: Tokenizer) -> [EvalItem] {
        tokenized.compactMap { s in
            // The last labelled run is the answer; everything before it is the prompt.
            guard let last = s.labels.lastIndex(where: { $0 != TokenizedExample.ignoreIndex }), last >= 1 else { return nil }
            var first = last
            while first - 1 >= 1 && s.labels[first - 1] != TokenizedExample.ignoreIndex { first -= 1 }
            let ids = Array(s.ids[...last].map(Int.init))
            let answer = tokenizer.decode(Array(ids[first...]), skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
            let prompt = tokenizer.decode(Array(ids[..<first]), skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
            let tail = prompt.split(separator: "\n").last.map(String.init) ?? prompt
            return EvalItem(id: Self.shortOrigin(s.origin), origin: s.origin, kind: .qa,
                            language: options.data.language ?? QAPrompt.detectLanguage(prompt),
                            question: String(tail.suffix(300)), promptIds: Array(ids[..<first]), answerIds: Array(ids[first...]),
                            references: [answer])
        }
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
        let stops = lm.stopTokenIds
        let V = lm.model.vocabSize
        var index = 0
        while index < items.count {
            // A group of up to batchSize QA items decoded together; text items one at a time.
            var group: [Int] = []
            while index < items.count && group.count < max(options.batchSize, 1) {
                let i = index
                index += 1
                if items[i].kind == .text {
                    results[i] = textLikelihood(items[i], lm)
                    done += 1
                    progress?(done, items.count)
                } else {
                    group.append(i)
                }
            }
            guard !group.isEmpty else { continue }
            var caches: [KVCache] = []
            var logits: [[Float]] = []
            var partial: [EvalItemResult] = []
            for i in group {
                let item = items[i]
                let cache = KVCache(config: lm.model.config, capacity: item.promptIds.count + item.answerIds.count + options.maxNewTokens + 1)
                let first = lm.model.forward(item.promptIds, cache: cache, logits: .last)
                var nll = 0.0
                if !item.answerIds.isEmpty {
                    nll -= logSoftmax(first, row: 0, vocab: V, index: item.answerIds[0])
                    if item.answerIds.count > 1 {
                        let rest = lm.model.forward(Array(item.answerIds.dropLast()), cache: cache, logits: .all)
                        for t in 1..<item.answerIds.count { nll -= logSoftmax(rest, row: t - 1, vocab: V, index: item.answerIds[t]) }
                    }
                    cache.length = item.promptIds.count
                }
                caches.append(cache)
                logits.append(first)
                partial.append(EvalItemResult(prediction: nil, nll: nll, tokens: item.answerIds.count))
            }
            let generated = greedyDecode(lm, caches: caches, firstLogits: logits, stops: stops)
            for (k, i) in group.enumerated() {
                var text = lm.tokenizer.decode(generated[k], skipSpecialTokens: true)
                // An answer cut by --max-new-tokens can end inside a UTF-8 sequence; drop the partial character.
                while text.unicodeScalars.last == "\u{FFFD}" { text.unicodeScalars.removeLast() }
                text = text.trimmingCharacters(in: .whitespacesAndNewlines)
                var r = EvalMetrics.score(prediction: text, item: items[i])
                r.nll = partial[k].nll
                r.tokens = partial[k].tokens
                results[i] = r
                done += 1
                progress?(done, items.count)
            }
        }
        return results.map { $0! }
    }

    /// Greedy decoding of several sequences, one shared step for all still running.
    func greedyDecode(_ lm: LanguageModel, caches: [KVCache], firstLogits: [[Float]], stops: Set<Int>) -> [[Int]] {
        let V = lm.model.vocabSize
        var out = [[Int]](repeating: [], count: caches.count)
        var active = Array(caches.indices)
        // Row k of `logits` belongs to active[k].
        var logits = firstLogits.flatMap { $0 }
        for _ in 0..<options.maxNewTokens {
            var next: [Int] = []
            var still: [Int] = []
            for (k, s) in active.enumerated() {
                let id = argmax(logits, row: k, vocab: V)
                if stops.contains(id) { continue }
                out[s].append(id)
                if out[s].count < options.maxNewTokens { still.append(s); next.append(id) }
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
