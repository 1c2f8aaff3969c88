import Foundation

/// Settings of one `generate` call.
public struct GenerationOptions: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingOptions
    /// Generation ends when the text contains one of these; the text is cut before it.
    public var stopStrings: [String]
    /// Keeps the answer to a span of this text (`--grounded`).
    public var grounding: GroundedSpan?
    public init(maxTokens: Int = 128, sampling: SamplingOptions = SamplingOptions(), stopStrings: [String] = [],
                grounding: GroundedSpan? = nil) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.grounding = grounding
    }
}

/// Why generation ended.
public enum FinishReason: String, Sendable, Codable { case eos, stop, length }

/// The outcome of `generate`.
public struct GenerationResult: Sendable {
    public var promptIds: [Int]
    /// Generated ids, including the EOS token when generation ended on it.
    public var ids: [Int]
    public var text: String
    public var finishReason: FinishReason
    public var promptSeconds: Double
    public var generateSeconds: Double
}

/// Turns a stream of token ids into text, holding back bytes of a UTF-8
/// sequence split across tokens until it is complete.
struct Utf8Stream {
    private var pending: [UInt8] = []

    mutating func append(_ bytes: [UInt8]) -> String {
        pending += bytes
        // Keep back an incomplete trailing sequence (at most 3 bytes).
        var cut = pending.count
        var i = pending.count - 1
        var seen = 0
        while i >= 0 && seen < 4 {
            let b = pending[i]
            if b & 0xC0 == 0x80 { seen += 1; i -= 1; continue }
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if need > seen + 1 && b >= 0xC0 { cut = i }
            break
        }
        let out = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return out
    }

    mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }
}

extension LanguageModel {
    /// Generates after `promptIds`. The prompt is processed as one batch; then
    /// one token at a time from the KV cache. `onText` receives text as it
    /// becomes final (stop strings are held back until they can be ruled out).
    ///
    /// With `cache`, positions already in it are reused: `cachedIds` must be the
    /// ids it holds, and only the part of `promptIds` after their common prefix is run.
    public func generate(promptIds: [Int], options: GenerationOptions, cache existing: KVCache? = nil,
                         cachedIds: [Int] = [], onText: ((String) -> Void)? = nil) -> GenerationResult {
        let cache = existing ?? KVCache(config: model.config, capacity: promptIds.count + options.maxTokens)
        var common = 0
        if existing != nil {
            let limit = min(cachedIds.count, promptIds.count, cache.length)
            while common < limit && cachedIds[common] == promptIds[common] { common += 1 }
            // At least one prompt token must run to produce logits.
            if common == promptIds.count { common -= 1 }
            common = max(common, 0)
            cache.length = common
        }
        var sampler = Sampler(options.sampling)
        let stops = stopTokenIds
        var context = promptIds
        var generated: [Int] = []
        var assembler = TextAssembler(stopStrings: options.stopStrings, dropLeadingSpace: tokenizer.core.stripLeadingSpace)
        var finish = FinishReason.length

        let start = Date()
        var logits = promptIds.isEmpty ? [] : model.forward(Array(promptIds[common...]), cache: cache, logits: .last)
        let promptSeconds = Date().timeIntervalSince(start)
        let genStart = Date()

        var span = GroundedSpan.State()
        while generated.count < options.maxTokens && !logits.isEmpty {
            let id: Int
            if let g = options.grounding {
                g.mask(&logits, state: span, tokenizer: tokenizer, stops: stops)
                // Nothing allowed: the answer has reached the end of the text without content.
                guard logits.contains(where: { $0 > -.infinity }) else { finish = .eos; break }
                id = sampler.next(logits: logits, context: context)
                span = g.allows(id, state: span, tokenizer: tokenizer, stops: stops).next
            } else {
                id = sampler.next(logits: logits, context: context)
            }
            generated.append(id)
            context.append(id)
            if stops.contains(id) { finish = .eos; break }
            let (piece, stopped) = assembler.append(tokenizer.tokenBytes(id))
            if let onText, !piece.isEmpty { onText(piece) }
            if stopped { finish = .stop; break }
            if generated.count >= options.maxTokens { break }
            logits = model.forward([id], cache: cache, logits: .last)
        }
        if finish != .stop {
            let rest = assembler.finish()
            if !rest.isEmpty { onText?(rest) }
        }
        return GenerationResult(promptIds: promptIds, ids: generated, text: assembler.text, finishReason: finish,
                                promptSeconds: promptSeconds, generateSeconds: Date().timeIntervalSince(genStart))
    }
}

/// Turns generated tokens' bytes into text that is final: UTF-8 sequences split across tokens are held
/// back until complete, and text that could still turn into a stop string is held back until it cannot
/// (`generate`'s streaming, and each request of `langtune serve`).
struct TextAssembler {
    let stopStrings: [String]
    /// Drop a space that starts the text, as the tokenizer's decoder does (Llama 2 / Mistral `Strip`).
    private var dropLeadingSpace: Bool
    private var bytes = Utf8Stream()
    /// All text so far (cut before the stop string once one is found).
    private(set) var text = ""
    private var emitted: String.Index

    init(stopStrings: [String], dropLeadingSpace: Bool = false) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
        self.dropLeadingSpace = dropLeadingSpace
        emitted = "".endIndex
    }

    /// Adds one token's bytes. Returns the text that became final and whether a stop string ended
    /// the text (it is then cut before the stop string and nothing more may be added).
    mutating func append(_ tokenBytes: [UInt8]) -> (text: String, stopped: Bool) {
        if dropLeadingSpace && !tokenBytes.isEmpty {
            dropLeadingSpace = false
            if tokenBytes[0] == 0x20 { text += bytes.append(Array(tokenBytes.dropFirst())) } else { text += bytes.append(tokenBytes) }
        } else {
            text += bytes.append(tokenBytes)
        }
        guard !stopStrings.isEmpty else { return (release(upTo: text.endIndex), false) }
        if let r = stopStrings.compactMap({ text.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            text = String(text[..<r.lowerBound])
            emitted = min(emitted, text.endIndex)
            return (release(upTo: text.endIndex), true)
        }
        return (release(upTo: safeEnd(text, stopStrings)), false)
    }

    /// Ends a text that no stop string ended: flushes held-back bytes and returns what was not yet released.
    mutating func finish() -> String {
        text += bytes.flush()
        return release(upTo: text.endIndex)
    }

    private mutating func release(upTo end: String.Index) -> String {
        guard emitted < end else { return "" }
        defer { emitted = end }
        return String(text[emitted..<end])
    }
}

/// End of the part of `text` that no stop string can still claim: the text
/// minus its longest suffix that is a proper prefix of a stop string.
func safeEnd(_ text: String, _ stops: [String]) -> String.Index {
    var end = text.endIndex
    for s in stops where !s.isEmpty {
        var k = min(s.count - 1, text.count)
        while k > 0 {
            let tail = text.index(text.endIndex, offsetBy: -k)
            if s.hasPrefix(text[tail...]) { end = min(end, tail); break }
            k -= 1
        }
    }
    return end
}
