extension Tokenizer {
    /// Loads the `tokenizer.ggml.*` metadata of a GGUF file: byte-level BPE
    /// (`tokenizer.ggml.model` = `gpt2`) with a known `tokenizer.ggml.pre`, or
    /// SentencePiece-style BPE with byte fallback (`llama`: Gemma, Llama 2, Mistral).
    /// Control (3) and user-defined (4) tokens are matched in text as added tokens; control
    /// tokens are special. Without `add_bos_token`, BOS is added for `llama-bpe` (llama.cpp's default).
    public convenience init(ggufMetadata: [String: GGUFValue], file: String) throws {
        let parts = try GGUFTokenizerLoader(file: file, metadata: ggufMetadata).load()
        self.init(core: try parts.build())
    }
}

struct GGUFTokenizerLoader {
    let file: String
    let metadata: [String: GGUFValue]

    func fail(_ problem: String) -> FormatError { FormatError(file: file, problem) }

    /// `tokenizer.ggml.pre` names and the pre-tokenization they stand for.
    static func preTokenizer(named name: String) -> PreTokenizer? {
        switch name {
        case "gpt2", "gpt-2": return PreTokenizer(steps: [.pattern(.gpt2)], addPrefixSpace: false)
        case "smollm": return PreTokenizer(steps: [.individualDigits, .pattern(.gpt2)], addPrefixSpace: false)
        case "llama-bpe", "llama3": return PreTokenizer(steps: [.pattern(.llama3)], addPrefixSpace: false)
        case "qwen2": return PreTokenizer(steps: [.pattern(.qwen2)], addPrefixSpace: false)
        default: return nil
        }
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let v = metadata[key] else { return nil }
        guard let i = v.int else { throw fail("\(key) is not an integer") }
        return i
    }

    func load() throws -> TokenizerParts {
        guard let model = metadata["tokenizer.ggml.model"]?.string else {
            throw fail("tokenizer.ggml.model is missing")
        }
        switch model {
        case "gpt2": break
        case "llama": return try loadSentencePiece()
        default: throw fail("tokenizer.ggml.model \(model.debugDescription) is not supported (gpt2: byte-level BPE, llama: SentencePiece BPE)")
        }
        guard let preName = metadata["tokenizer.ggml.pre"]?.string else {
            throw fail("tokenizer.ggml.pre is missing, so the pre-tokenizer is unknown")
        }
        guard let pre = GGUFTokenizerLoader.preTokenizer(named: preName) else {
            throw fail("tokenizer.ggml.pre \(preName.debugDescription) is not supported (gpt2, smollm, llama-bpe, qwen2)")
        }
        let (tokens, types) = try tokensAndTypes()
        guard let mergeValues = metadata["tokenizer.ggml.merges"]?.array else { throw fail("tokenizer.ggml.merges is missing") }

        var parts = TokenizerParts(file: file)
        parts.preTokenizer = pre
        parts.ignoreMerges = preName == "llama-bpe" || preName == "llama3"
        parts.vocab = tokens.enumerated().map { ($0.element, $0.offset) }
        parts.merges.reserveCapacity(mergeValues.count)
        for (i, v) in mergeValues.enumerated() {
            guard let s = v.string, let space = s.utf8.firstIndex(of: 0x20) else {
                throw fail("tokenizer.ggml.merges[\(i)] is not an \"a b\" string")
            }
            parts.merges.append((String(s[..<space]), String(s[s.utf8.index(after: space)...])))
        }
        for (i, t) in types.enumerated() where t == 3 || t == 4 {
            parts.added.append(AddedTokenSpec(id: Int32(i), content: Array(tokens[i].utf8), special: t == 3))
        }
        try readSpecialIds(into: &parts, addBOSByDefault: parts.ignoreMerges)
        return parts
    }

    /// The token list and per-token types (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte).
    func tokensAndTypes() throws -> (tokens: [String], types: [Int]) {
        guard let tokenValues = metadata["tokenizer.ggml.tokens"]?.array else { throw fail("tokenizer.ggml.tokens is missing") }
        guard tokenValues.count <= TokenizerParts.maxId else { throw fail("tokenizer.ggml.tokens has too many entries") }
        var tokens: [String] = []
        tokens.reserveCapacity(tokenValues.count)
        for (i, v) in tokenValues.enumerated() {
            guard let s = v.string else { throw fail("tokenizer.ggml.tokens[\(i)] is not a string") }
            tokens.append(s)
        }
        var types = [Int](repeating: 1, count: tokens.count)
        if let typeValues = metadata["tokenizer.ggml.token_type"]?.array {
            guard typeValues.count == tokens.count else {
                throw fail("tokenizer.ggml.token_type has \(typeValues.count) entries for \(tokens.count) tokens")
            }
            for (i, v) in typeValues.enumerated() {
                guard let t = v.int else { throw fail("tokenizer.ggml.token_type[\(i)] is not an integer") }
                types[i] = t
            }
        }
        return (tokens, types)
    }

    /// BOS/EOS/padding ids and whether BOS/EOS are added (`add_bos_token` absent: `addBOSByDefault`).
    func readSpecialIds(into parts: inout TokenizerParts, addBOSByDefault: Bool) throws {
        parts.bosTokenId = try optionalInt("tokenizer.ggml.bos_token_id")
        parts.eosTokenId = try optionalInt("tokenizer.ggml.eos_token_id")
        parts.padTokenId = try optionalInt("tokenizer.ggml.padding_token_id")
        if let v = metadata["tokenizer.ggml.add_bos_token"] {
            guard let b = v.bool else { throw fail("tokenizer.ggml.add_bos_token is not a boolean") }
            parts.addBOS = b
        } else {
            parts.addBOS = addBOSByDefault
        }
        if let v = metadata["tokenizer.ggml.add_eos_token"] {
            guard let b = v.bool else { throw fail("tokenizer.ggml.add_eos_token is not a boolean") }
            parts.addEOS = b
        }
    }
}
