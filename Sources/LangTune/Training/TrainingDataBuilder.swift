import Foundation

/// Turns raw examples into token ids and labels for training.
///
/// - SQuAD questions become `[system?, user: prompt, assistant: first answer]`, rendered
///   with the chat template; a context too long for `maxSeqLen` is cut to the largest
///   window around the answer that fits (`ContextWindows`); the answer is never cut.
/// - Conversations (and Alpaca records) are labelled on assistant turns only; one
///   longer than `maxSeqLen` is dropped.
/// - Plain text is labelled everywhere and cut into windows (`textWindows`).
///
/// Chat renderings are tokenized segment by segment: the prompt of each labelled turn
/// exactly as `LanguageModel.promptIds` tokenizes a prompt (rendered with the
/// generation prompt, no added special tokens), then the answer with its end-of-turn
/// token, so the ids seen in training are the ids seen when generating.
public struct TrainingDataBuilder: Sendable {
    public let tokenizer: Tokenizer
    public let template: ChatTemplate?
    public let options: TrainingDataOptions

    /// A plain-text tail shorter than this many tokens is merged into the previous window or dropped.
    public static let minTailTokens = 16

    public init(tokenizer: Tokenizer, template: ChatTemplate?, options: TrainingDataOptions) {
        self.tokenizer = tokenizer
        self.template = template
        self.options = options
    }

    /// Tokenizes `raw`. Throws `DatasetError` for a template that cannot separate
    /// answers from prompts, a template error, an unknown language, or when no example survives.
    public func build(_ raw: [RawExample]) throws -> (examples: [TokenizedExample], report: DataReport) {
        let files = Self.fileList(raw)
        guard !raw.isEmpty else { throw DatasetError(file: files, "the dataset has no examples") }
        guard options.maxSeqLen >= 2 else {
            throw DatasetError(file: files, "the maximum sequence length must be at least 2 tokens (got \(options.maxSeqLen))")
        }
        try validateOptions(files: files)
        var report = DataReport()
        report.total = raw.count
        report.maxSeqLen = options.maxSeqLen
        var examples: [TokenizedExample] = []
        var totalTokens = 0
        for example in raw {
            switch try tokenize(example) {
            case .kept(let seqs, let trimmed):
                report.kept += 1
                if trimmed { report.contextTrimmed += 1 }
                for s in seqs {
                    totalTokens += s.ids.count
                    report.maxTokens = max(report.maxTokens, s.ids.count)
                    report.answerTokens += s.targetCount
                }
                examples += seqs
            case .dropped(let reason):
                report.dropped += 1
                switch reason {
                case .tooLong: report.droppedTooLong += 1
                case .noAnswerTokens: report.droppedNoAnswerTokens += 1
                case .answerNotFound: report.droppedAnswerNotFound += 1
                }
                if report.droppedOrigins.count < DataReport.originLimit { report.droppedOrigins.append(example.origin) }
            }
        }
        report.sequences = examples.count
        report.meanTokens = examples.isEmpty ? 0 : Double(totalTokens) / Double(examples.count)
        guard !examples.isEmpty else {
            throw DatasetError(file: files, "no usable example: all \(raw.count) were dropped ("
                + [(report.droppedTooLong, "longer than \(options.maxSeqLen) tokens even with the context trimmed to the answer"),
                   (report.droppedAnswerNotFound, "too long, with the answer not found in the context"),
                   (report.droppedNoAnswerTokens, "with no answer tokens")]
                .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                + "); first: " + report.droppedOrigins.prefix(3).joined(separator: ", "))
        }
        return (examples, report)
    }

    enum DropReason { case tooLong, noAnswerTokens, answerNotFound }
    enum Outcome {
        case kept([TokenizedExample], trimmed: Bool)
        case dropped(DropReason)
    }

    func tokenize(_ example: RawExample) throws -> Outcome {
        switch example.body {
        case .qa(let item): return try qa(item, origin: example.origin)
        case .chat(let messages): return try chat(messages, origin: example.origin)
        case .text(let text): return plainText(text, origin: example.origin)
        }
    }

    // MARK: Conversations

    /// A piece of rendered text and whether its tokens are targets.
    struct Segment: Equatable {
        var text: String
        var label: Bool
    }

    func chat(_ messages: [ChatMessage], origin: String) throws -> Outcome {
        var messages = messages
        if let system = options.systemPrompt, messages.first?.role != "system" {
            messages.insert(ChatMessage(role: "system", content: system), at: 0)
        }
        let segments = try chatSegments(messages, origin: origin)
        let example = encode(segments, origin: origin)
        if example.ids.count > options.maxSeqLen { return .dropped(.tooLong) }
        if example.targetCount == 0 { return .dropped(.noAnswerTokens) }
        return .kept([example], trimmed: false)
    }

    /// The conversation up to its last labelled assistant turn, cut into prompt and answer segments.
    ///
    /// An assistant message that opens the conversation is never labelled.
    /// For a labelled turn k, P = render(messages[..<k], generation prompt) must be a prefix
    /// of F = render(messages[...k]) (and F of the whole rendering): F minus P is the turn's
    /// answer text with its end-of-turn token.
    func chatSegments(_ messages: [ChatMessage], origin: String) throws -> [Segment] {
        guard let template else {
            throw DatasetError(file: Self.file(of: origin), location: Self.location(of: origin),
                               "the model has no chat template, which QA and chat examples need (train on plain text instead)")
        }
        // A turn that opens the conversation has nothing to answer (and templates add their
        // default system message only once a first message exists), so it is context, not a target.
        let assistants = messages.indices.filter { $0 > 0 && messages[$0].role == "assistant" }
        let labelled = options.labelAllAssistantTurns ? assistants : Array(assistants.suffix(1))
        guard let last = labelled.last else {
            return [Segment(text: try render(template, messages, generationPrompt: false, origin: origin), label: false)]
        }
        let whole = Array(try render(template, Array(messages[...last]), generationPrompt: false, origin: origin).utf8)
        var segments: [Segment] = []
        var cursor = 0
        for k in labelled {
            let prompt = Array(try render(template, Array(messages[..<k]), generationPrompt: true, origin: origin).utf8)
            let full = k == last ? whole : Array(try render(template, Array(messages[...k]), generationPrompt: false, origin: origin).utf8)
            guard prompt.count >= cursor, full.starts(with: prompt), whole.starts(with: full) else {
                let family = template.family == .unknown ? "an unrecognised (custom) template" : "the \(template.family.rawValue) template"
                throw DatasetError(file: Self.file(of: origin), location: Self.location(of: origin),
                                   "cannot label assistant turn \(k + 1): with \(family), the rendering of the conversation up to the "
                                   + "turn's generation prompt is not a prefix of the rendering that includes the turn, so answer tokens "
                                   + "cannot be told apart from prompt tokens (use a template that renders earlier turns unchanged"
                                   + (options.labelAllAssistantTurns && labelled.count > 1 ? ", or label only the last assistant turn)" : ")"))
            }
            if prompt.count > cursor { segments.append(Segment(text: String(decoding: prompt[cursor...], as: UTF8.self), label: false)) }
            segments.append(Segment(text: String(decoding: full[prompt.count...], as: UTF8.self), label: true))
            cursor = full.count
        }
        return segments
    }

    func render(_ template: ChatTemplate, _ messages: [ChatMessage], generationPrompt: Bool, origin: String) throws -> String {
        do {
            return try template.render(messages: messages, addGenerationPrompt: generationPrompt,
                                       bosToken: tokenizer.bosToken ?? "", eosToken: tokenizer.eosToken ?? "")
        } catch {
            throw DatasetError(file: Self.file(of: origin), location: Self.location(of: origin),
                               "the chat template rejected the conversation: \(error)")
        }
    }

    /// Ids and labels of `segments`, each tokenized on its own without added special tokens.
    func encode(_ segments: [Segment], origin: String) -> TokenizedExample {
        var ids: [Int32] = [], labels: [Int32] = []
        for segment in segments {
            let part = tokenizer.encode(segment.text, addSpecialTokens: false).map { Int32(truncatingIfNeeded: $0) }
            ids += part
            labels += segment.label ? part : Array(repeating: TokenizedExample.ignoreIndex, count: part.count)
        }
        return TokenizedExample(ids: ids, labels: labels, origin: origin)
    }

    // MARK: Questions

    /// The language used for `item`: the option, else detected from the question and context.
    public func language(of item: QAItem) -> String {
        options.language ?? QAPrompt.detectLanguage(item.question + "\n" + item.context)
    }

    /// The user prompt for `item` with `context` (default: the whole context).
    public func prompt(for item: QAItem, context: String? = nil) throws -> String {
        let template: String
        if let t = options.promptTemplate {
            template = t
        } else {
            let lang = language(of: item)
            guard let t = QAPrompt.defaultTemplate(language: lang) else {
                throw DatasetError(file: "training options", "no built-in prompt for language \"\(lang)\" (built in: "
                                   + QAPrompt.languages.joined(separator: ", ") + "); give a prompt template")
            }
            template = t
        }
        return QAPrompt.fill(template, context: context ?? item.context, question: item.question)
    }

    /// The messages a QA example is rendered from, without the answer: what evaluation
    /// renders (with the generation prompt) to ask the question.
    public func promptMessages(for item: QAItem, context: String? = nil) throws -> [ChatMessage] {
        var messages: [ChatMessage] = []
        if let system = options.systemPrompt { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: try prompt(for: item, context: context)))
        return messages
    }

    /// Rejects a prompt template without its placeholders and a language without a built-in prompt.
    func validateOptions(files: String) throws {
        if let t = options.promptTemplate {
            guard t.contains("{context}") && t.contains("{question}") else {
                throw DatasetError(file: files, "the prompt template must contain {context} and {question}")
            }
        } else if let lang = options.language, QAPrompt.defaultTemplate(language: lang) == nil {
            throw DatasetError(file: files, "no built-in prompt for language \"\(lang)\" (built in: "
                               + QAPrompt.languages.joined(separator: ", ") + "); give a prompt template")
        }
    }

    func qa(_ item: QAItem, origin: String) throws -> Outcome {
        let answer = (item.answers.first ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !answer.isEmpty else { return .dropped(.noAnswerTokens) }
        func build(_ context: String) throws -> TokenizedExample {
            try qaSequence(item, answer: answer, context: context, origin: origin)
        }
        let whole = try build(item.context)
        if whole.targetCount == 0 { return .dropped(.noAnswerTokens) }
        if whole.ids.count <= options.maxSeqLen { return .kept([whole], trimmed: false) }

        let scalars = Array(item.context.unicodeScalars)
        guard let span = Self.locate(answer, in: scalars, near: item.answerStart, original: item.answers.first ?? "") else {
            return .dropped(.answerNotFound)
        }
        let windows = ContextWindows(scalars: scalars, answer: span, wordsSeparatedBySpaces: language(of: item) != "zh")
        let cands = windows.candidates
        // cands.last is the whole context, already too long. Bisect for the largest window that fits.
        var best = try build(windows.text(cands[0]))
        guard best.ids.count <= options.maxSeqLen else { return .dropped(.tooLong) }
        var lo = 0, hi = cands.count - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            let candidate = try build(windows.text(cands[mid]))
            if candidate.ids.count <= options.maxSeqLen { lo = mid; best = candidate } else { hi = mid }
        }
        if best.targetCount == 0 { return .dropped(.noAnswerTokens) }
        return .kept([best], trimmed: true)
    }

    /// `item` asked about `context` and answered with `answer`, tokenized: the prompt's tokens
    /// unlabelled, the answer's (with its end-of-turn token) labelled.
    func qaSequence(_ item: QAItem, answer: String, context: String, origin: String) throws -> TokenizedExample {
        var messages = try promptMessages(for: item, context: context)
        messages.append(ChatMessage(role: "assistant", content: answer))
        return encode(try chatSegments(messages, origin: origin), origin: origin)
    }

    /// The answer's span in `scalars`: at `answer_start` when the text there matches (allowing
    /// for white space trimmed off the answer), else the occurrence nearest to it (the first
    /// when there is no start). Data sets are off by a character now and then (CMRC 2018).
    static func locate(_ answer: String, in scalars: [Unicode.Scalar], near start: Int?, original: String) -> Range<Int>? {
        let needle = Array(answer.unicodeScalars)
        guard !needle.isEmpty, needle.count <= scalars.count else { return nil }
        func matches(at i: Int) -> Bool {
            i >= 0 && i + needle.count <= scalars.count && scalars[i..<(i + needle.count)].elementsEqual(needle)
        }
        if let start {
            let lead = original.unicodeScalars.prefix(while: { $0.properties.isWhitespace }).count
            if matches(at: start + lead) { return (start + lead)..<(start + lead + needle.count) }
        }
        var best: Int? = nil
        for i in 0...(scalars.count - needle.count) where matches(at: i) {
            guard let start else { best = i; break }
            if best.map({ abs(i - start) < abs($0 - start) }) ?? true { best = i }
            if i > start { break }
        }
        return best.map { $0..<($0 + needle.count) }
    }

    // MARK: Plain text

    /// Plain text: `encode(text, addSpecialTokens: true)`, every token a target, cut into
    /// consecutive non-overlapping windows of `maxSeqLen` tokens. A last window shorter than
    /// `minTailTokens` is merged into the previous one when both fit in `maxSeqLen` (they
    /// never do once the previous window is full, so in practice such a tail is dropped);
    /// a document shorter than one window is kept whole.
    func plainText(_ text: String, origin: String) -> Outcome {
        let ids = tokenizer.encode(text, addSpecialTokens: true).map { Int32(truncatingIfNeeded: $0) }
        let windows = Self.textWindows(count: ids.count, maxSeqLen: options.maxSeqLen, minTail: Self.minTailTokens)
        let seqs = windows.map { r in TokenizedExample(ids: Array(ids[r]), labels: Array(ids[r]), origin: origin) }
            .filter { $0.targetCount > 0 }
        return seqs.isEmpty ? .dropped(.noAnswerTokens) : .kept(seqs, trimmed: false)
    }

    /// The windows of a `count`-token document (see `plainText(_:origin:)`).
    static func textWindows(count: Int, maxSeqLen: Int, minTail: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        while start < count {
            let end = min(count, start + maxSeqLen)
            let piece = start..<end
            if piece.count < minTail, let prev = out.last {
                if prev.count + piece.count <= maxSeqLen { out[out.count - 1] = prev.lowerBound..<end }
            } else {
                out.append(piece)
            }
            start = end
        }
        return out
    }

    // MARK: Origins

    /// The file part of an origin (`path:location`; locations never contain a colon).
    static func file(of origin: String) -> String {
        guard let colon = origin.lastIndex(of: ":") else { return origin }
        return String(origin[..<colon])
    }

    static func location(of origin: String) -> String? {
        guard let colon = origin.lastIndex(of: ":") else { return nil }
        return String(origin[origin.index(after: colon)...])
    }

    /// The distinct files of `raw`, for error messages.
    static func fileList(_ raw: [RawExample]) -> String {
        var seen: [String] = []
        for e in raw {
            let f = file(of: e.origin)
            if !seen.contains(f) { seen.append(f); if seen.count > 3 { break } }
        }
        if seen.isEmpty { return "training data" }
        return seen.count > 3 ? seen.prefix(3).joined(separator: ", ") + ", …" : seen.joined(separator: ", ")
    }
}
