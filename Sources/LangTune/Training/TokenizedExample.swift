import Foundation

/// One training sequence: token ids and, for each position, the id the loss targets there.
///
/// Labels follow Hugging Face's convention and are **not shifted**: `labels[i]` is either
/// `ids[i]` (the token at position `i` is a target) or `-100` (no loss). The trainer shifts,
/// predicting `labels[i]` from the logits at position `i - 1` (so `labels[0]` is never used),
/// exactly as `transformers` does with `labels = input_ids` and masked prompt tokens.
public struct TokenizedExample: Sendable, Equatable, Codable {
    public var ids: [Int32]
    /// Target per position (`ids[i]`) or `TokenizedExample.ignoreIndex` for no loss.
    public var labels: [Int32]
    /// Where the example came from (`file:line`, `file:data[0].paragraphs[1].qas[2]`).
    public var origin: String

    /// The label of positions without loss (PyTorch's `ignore_index`).
    public static let ignoreIndex: Int32 = -100

    public init(ids: [Int32], labels: [Int32], origin: String) {
        self.ids = ids
        self.labels = labels
        self.origin = origin
    }

    /// Positions that contribute to the loss after the trainer's shift (label set, position ≥ 1).
    public var targetCount: Int {
        guard labels.count > 1 else { return 0 }
        return labels[1...].reduce(0) { $0 + ($1 == Self.ignoreIndex ? 0 : 1) }
    }
}

/// How raw examples become token sequences.
public struct TrainingDataOptions: Sendable, Equatable, Codable {
    /// The longest sequence kept, in tokens. QA contexts are trimmed to fit; longer
    /// conversations are dropped; plain text is cut into windows of this size.
    public var maxSeqLen: Int
    /// The user prompt for SQuAD questions, with `{context}` and `{question}` placeholders.
    /// nil uses the built-in template of the example's language (`QAPrompt.defaultTemplate`).
    public var promptTemplate: String?
    /// `tr`, `zh` or `en` for every QA example; nil detects it per example (`QAPrompt.detectLanguage`).
    public var language: String?
    /// A system message put before QA prompts and before conversations that have none.
    /// nil adds nothing (the model's template may add its own default system message).
    public var systemPrompt: String?
    /// Label every assistant turn of a conversation (true) or only the last one.
    public var labelAllAssistantTurns: Bool

    public init(maxSeqLen: Int = 512, promptTemplate: String? = nil, language: String? = nil,
                systemPrompt: String? = nil, labelAllAssistantTurns: Bool = true) {
        self.maxSeqLen = maxSeqLen
        self.promptTemplate = promptTemplate
        self.language = language
        self.systemPrompt = systemPrompt
        self.labelAllAssistantTurns = labelAllAssistantTurns
    }
}

/// What `TrainingDataBuilder.build` did with a data set.
public struct DataReport: Sendable, Equatable, Codable {
    /// Raw examples given.
    public var total = 0
    /// Raw examples that gave at least one sequence.
    public var kept = 0
    /// Sequences produced (more than `kept` when plain text is cut into windows).
    public var sequences = 0
    /// QA examples kept with their context cut to a window around the answer.
    public var contextTrimmed = 0
    /// Raw examples that gave no sequence (`total - kept`).
    public var dropped = 0
    /// Of `dropped`: longer than `maxSeqLen` even with the context cut to the answer (or a conversation that is too long).
    public var droppedTooLong = 0
    /// Of `dropped`: nothing to learn (no target token after the shift).
    public var droppedNoAnswerTokens = 0
    /// Of `dropped`: a QA example too long to keep whole whose answer text is not in its context, so no window can be cut.
    public var droppedAnswerNotFound = 0
    /// Origins of the first dropped examples (at most `DataReport.originLimit`).
    public var droppedOrigins: [String] = []
    /// Mean sequence length in tokens.
    public var meanTokens = 0.0
    /// Longest sequence in tokens.
    public var maxTokens = 0
    /// Tokens that carry loss, over all sequences (after the shift: position ≥ 1 with a label).
    public var answerTokens = 0
    /// The sequence length limit used.
    public var maxSeqLen = 0

    public static let originLimit = 10

    public init() {}

    /// One paragraph for the CLI.
    public var summary: String {
        var s = "\(total) example\(total == 1 ? "" : "s"): kept \(kept)"
        if sequences != kept { s += " (\(sequences) sequences)" }
        if contextTrimmed > 0 { s += ", \(contextTrimmed) with the context trimmed to fit \(maxSeqLen) tokens" }
        if dropped > 0 {
            var why: [String] = []
            if droppedTooLong > 0 { why.append("\(droppedTooLong) too long for \(maxSeqLen) tokens") }
            if droppedAnswerNotFound > 0 { why.append("\(droppedAnswerNotFound) too long with the answer not found in the context") }
            if droppedNoAnswerTokens > 0 { why.append("\(droppedNoAnswerTokens) with no answer tokens") }
            s += "; dropped \(dropped) (" + why.joined(separator: ", ") + ")"
        }
        s += "; \(String(format: "%.1f", meanTokens)) tokens per sequence on average, at most \(maxTokens); \(answerTokens) answer tokens"
        if !droppedOrigins.isEmpty {
            s += "\nfirst dropped: " + droppedOrigins.prefix(3).joined(separator: ", ")
        }
        return s
    }
}
