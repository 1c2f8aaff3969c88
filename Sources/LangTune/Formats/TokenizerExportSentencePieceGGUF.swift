import Foundation

/// A GGUF SentencePiece vocabulary (`tokenizer.ggml.model` = `llama`) from a `tokenizer.json` with
/// byte fallback (a Gemma 3, Llama 2 or Mistral Hugging Face folder). A tokenizer.json has no
/// SentencePiece scores and llama.cpp merges by score, so scores are made to give the order the
/// readers of the file merge in:
/// - Gemma: GGUF readers (transformers, LangTune) rank Gemma's merges by token id, so normal tokens
///   score `-k` (the k-th normal token), falling with the id as in Google's GGUF; control and
///   user-defined tokens -1000, byte tokens 0, as there. Runs of `▁` are written as real spaces and
///   user-defined, as Google's GGUF stores them (readers respell them `▁▁…`).
/// - Llama 2 / Mistral: readers rank by score, so each token scores minus the best rank of a
///   tokenizer.json merge that makes it; tokens no merge makes score below all of those.
extension TokenizerExport {
    static func sentencePieceGGUFMetadata(parts: TokenizerParts, core: TokenizerCore, file: String,
                                          architecture: String, vocabSize: Int) throws -> [(String, GGUFValue)] {
        func fail(_ p: String) -> FormatError { FormatError(file: file, p) }
        guard let spm = parts.sentencePiece else { throw fail("not a SentencePiece-style tokenizer") }
        let gemma = architecture.hasPrefix("gemma")
        // GGUF says only whether `▁` goes before the text: transformers reads that as Metaspace "first".
        switch (spm.spacePrefix, spm.splitWords) {
        case (.never, false) where gemma, (.first, false) where !gemma: break
        default:
            throw fail("this tokenizer.json's rule for `▁` (\(spm.spacePrefix)\(spm.splitWords ? ", words split" : "")) has no GGUF equivalent for \(architecture.isEmpty ? "this architecture" : architecture), where a vocabulary can only say \(gemma ? "none" : "before the text (Metaspace first)"); merge to a Hugging Face folder (--format hf)")
        }
        guard core.vocabSize <= vocabSize else {
            throw fail("the tokenizer has \(core.vocabSize) ids but the model's vocabulary is \(vocabSize)")
        }
        var tokens = [String?](repeating: nil, count: vocabSize)
        var types = [Int32](repeating: 1, count: vocabSize)
        for (text, id) in parts.vocab where tokens[id] == nil { tokens[id] = text }
        for (b, id) in spm.byteIds.enumerated() where id >= 0 && String(format: "<0x%02X>", b) == tokens[Int(id)] {
            types[Int(id)] = 6
        }
        for a in parts.added {
            tokens[Int(a.id)] = String(decoding: a.content, as: UTF8.self)
            types[Int(a.id)] = a.special ? 3 : 4
        }
        if spm.unknownId >= 0 && types[Int(spm.unknownId)] == 1 { types[Int(spm.unknownId)] = 2 }
        var scores = [Float](repeating: 0, count: vocabSize)
        var normal = 0
        let mergeCount = spm.rank.lazy.filter { $0 != Int32.max }.count
        for id in 0..<vocabSize {
            guard let token = tokens[id] else {
                tokens[id] = "[PAD\(id)]"
                types[id] = 5
                continue
            }
            if gemma, types[id] == 1, token.unicodeScalars.count >= 2, token.unicodeScalars.allSatisfy({ $0 == "▁" }) {
                tokens[id] = String(repeating: " ", count: token.unicodeScalars.count)
                types[id] = 4
            }
            switch types[id] {
            case 1 where gemma:
                scores[id] = -Float(normal)
                normal += 1
            case 1, 2:
                let r = id < spm.rank.count ? spm.rank[id] : Int32.max
                scores[id] = r != Int32.max ? -Float(r) : -Float(mergeCount + id)
            case 6: scores[id] = 0
            default: scores[id] = gemma ? -1000 : 0
            }
        }
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.tokens", .array(elementType: 8, tokens.map { .string($0!) })),
            ("tokenizer.ggml.scores", .array(elementType: 6, scores.map { .f32($0) })),
            ("tokenizer.ggml.token_type", .array(elementType: 5, types.map { .i32($0) })),
        ]
        if let id = core.bosTokenId { out.append(("tokenizer.ggml.bos_token_id", .u32(UInt32(id)))) }
        if let id = core.eosTokenId { out.append(("tokenizer.ggml.eos_token_id", .u32(UInt32(id)))) }
        if spm.unknownId >= 0 { out.append(("tokenizer.ggml.unknown_token_id", .u32(UInt32(spm.unknownId)))) }
        if let id = core.padTokenId { out.append(("tokenizer.ggml.padding_token_id", .u32(UInt32(id)))) }
        out += try ggufAddedSpecialTokens(core: core, file: file)
        out.append(("tokenizer.ggml.add_space_prefix", .bool(!gemma)))
        return out
    }
}
