import Foundation

/// Where LangTune keeps downloaded models: `$LANGTUNE_HOME`, else `~/.cache/langtune`.
public enum LangTuneHome {
    public static var url: URL {
        if let h = ProcessInfo.processInfo.environment["LANGTUNE_HOME"], !h.isEmpty {
            return URL(fileURLWithPath: h)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/langtune")
    }
    /// The built-in default model: SmolLM2-135M-Instruct, Q4_1 GGUF.
    public static var defaultModel: URL { url.appendingPathComponent(builtIn["default"]!) }

    /// Names a model argument may use for the files `scripts/fetch-models.sh` downloads.
    public static let builtIn: [String: String] = [
        "default": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2-135m": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        // Multilingual (140+ languages); the better Q&A model after fine-tuning (docs/EVALUATION.md).
        "gemma3-270m": "models/gemma-3-270m-q4_k_m.gguf",
    ]

    /// Resolves a model argument: a built-in name (`default`, `smollm2-135m`, `gemma3-270m`), a GGUF
    /// file or a safetensors folder.
    public static func resolve(_ spec: String) throws -> String {
        if let file = builtIn[spec], !FileManager.default.fileExists(atPath: spec) {
            let p = url.appendingPathComponent(file).path
            guard FileManager.default.fileExists(atPath: p) else {
                throw FormatError(file: p, "the model `\(spec)` is not downloaded yet; run scripts/fetch-models.sh (or scripts/setup.sh)")
            }
            return p
        }
        return spec
    }
}

/// A model ready to use: weights, tokenizer, chat template and sampling defaults.
public final class LanguageModel: @unchecked Sendable {
    public let files: ModelFiles
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate?

    /// Loads `spec` (`default`, a `.gguf` file or a safetensors folder) and,
    /// if given, a PEFT LoRA adapter folder applied on top of it.
    /// With `quantization`, the targeted projections are quantized to NF4 at load (QLoRA's frozen base).
    public init(_ spec: String, adapter: String? = nil, backend: any ComputeBackend = CPUBackend(),
                quantization: FrozenQuantization? = nil) throws {
        let path = try LangTuneHome.resolve(spec)
        files = try ModelFiles.load(path)
        tokenizer = try Tokenizer(source: files.tokenizer)
        template = try files.chatTemplate.map { try ChatTemplate($0) }
        model = try LlamaModel(files: files, backend: backend, quantization: quantization)
        if let adapter { model.adapter = try LoRAAdapter.load(from: adapter, model: files.config) }
    }

    /// Token ids that stop generation: the config's, the generation config's and the tokenizer's EOS.
    public var stopTokenIds: Set<Int> {
        var s = Set(files.config.eosTokenIds)
        s.formUnion(files.generationDefaults?.eosTokenIds ?? [])
        if let e = tokenizer.eosTokenId { s.insert(e) }
        s.formUnion(files.config.turnEndTokenIds(id: tokenizer.id(forToken:)))
        return s
    }

    /// Renders `messages` with the model's chat template.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        guard let template else {
            throw FormatError(file: files.path, "the model has no chat template; use a plain prompt (no --chat)")
        }
        return try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                   bosToken: tokenizer.bosToken ?? "", eosToken: tokenizer.eosToken ?? "")
    }

    /// Prompt ids for one user message (`chat`) or for plain text. Chat renderings
    /// carry their own special tokens, so no BOS is added to them (as transformers).
    public func promptIds(_ text: String, chat: Bool, system: String? = nil) throws -> [Int] {
        if chat {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: text))
            return tokenizer.encode(try render(messages, addGenerationPrompt: true), addSpecialTokens: false)
        }
        return tokenizer.encode(text, addSpecialTokens: true)
    }
}

/// What `score` reports for a teacher-forced pass.
public struct ScoreResult: Sendable, Codable {
    public var ids: [Int]
    /// Mean natural-log probability of tokens 1..<n given their prefixes (0 for a single token).
    public var meanLogprob: Double
    /// The largest logits at the last position, as (id, logit), best first.
    public var lastTop: [(Int, Float)]

    enum CodingKeys: String, CodingKey { case ids, meanLogprob = "mean_logprob", lastTop = "last_top" }
    public init(ids: [Int], meanLogprob: Double, lastTop: [(Int, Float)]) {
        self.ids = ids
        self.meanLogprob = meanLogprob
        self.lastTop = lastTop
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ids, forKey: .ids)
        try c.encode(meanLogprob, forKey: .meanLogprob)
        try c.encode(lastTop.map { [Double($0.0), Double($0.1)] }, forKey: .lastTop)
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ids = try c.decode([Int].self, forKey: .ids)
        meanLogprob = try c.decode(Double.self, forKey: .meanLogprob)
        lastTop = try c.decode([[Double]].self, forKey: .lastTop).map { (Int($0[0]), Float($0[1])) }
    }
}

extension LanguageModel {
    /// Teacher-forced pass over `ids`.
    public func score(_ ids: [Int], top: Int = 10) -> ScoreResult { model.score(ids, top: top) }
}

extension LlamaModel {
    /// Teacher-forced pass over `ids` (a fresh cache).
    public func score(_ ids: [Int], top: Int = 10) -> ScoreResult {
        let cache = KVCache(config: config, capacity: ids.count)
        let logits = forward(ids, cache: cache, logits: .all)
        let V = vocabSize
        var total = 0.0
        for t in 1..<max(ids.count, 1) {
            total += logSoftmax(logits, row: t - 1, vocab: V, index: ids[t])
        }
        let last = Array(logits[((ids.count - 1) * V)..<(ids.count * V)])
        return ScoreResult(ids: ids, meanLogprob: ids.count > 1 ? total / Double(ids.count - 1) : 0,
                           lastTop: topK(last, top))
    }
}

/// log softmax(logits[row])[index], accumulated in Double.
func logSoftmax(_ logits: [Float], row: Int, vocab: Int, index: Int) -> Double {
    let base = row * vocab
    var mx = -Double.infinity
    for i in 0..<vocab { mx = max(mx, Double(logits[base + i])) }
    var z = 0.0
    for i in 0..<vocab { z += exp(Double(logits[base + i]) - mx) }
    return Double(logits[base + index]) - mx - log(z)
}

/// The k largest values as (index, value), largest first; ties by lower index.
public func topK(_ values: [Float], _ k: Int) -> [(Int, Float)] {
    topK(values[...], k)
}

/// `topK` of a slice (a row of a larger buffer, no copy); indices are the slice's own.
func topK(_ values: ArraySlice<Float>, _ k: Int) -> [(Int, Float)] {
    guard k > 0 else { return [] }
    if k * 8 >= values.count {
        let order = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        return order.prefix(k).map { ($0, values[$0]) }
    }
    // One pass keeping the best k so far, best first; an equal value goes after the ones
    // already kept, so ties stay in index order as in the full sort.
    var best: [(Int, Float)] = []
    best.reserveCapacity(k + 1)
    for (i, v) in zip(values.indices, values) {
        if best.count == k && !(v > best[k - 1].1) { continue }
        var lo = 0, hi = best.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if best[mid].1 >= v { lo = mid + 1 } else { hi = mid }
        }
        best.insert((i, v), at: lo)
        if best.count > k { best.removeLast() }
    }
    return best
}
