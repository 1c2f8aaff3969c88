import Foundation

/// `tokenizer.json` for a Gemma GGUF vocabulary, as transformers builds it from the file
/// (`integrations/gguf/gguf_tokenizer_mapping.py`, `gemma_tokenizer`), so that transformers and
/// `tokenizers` give the ids LangTune and llama.cpp give.
extension TokenizerExport {
    /// tokenizer.json and tokenizer_config.json for a SentencePiece-style GGUF vocabulary: Gemma's
    /// (`tokenizer.ggml.add_space_prefix` false; merges in id order), or Llama 2's and Mistral's
    /// (`add_space_prefix` true: Metaspace "first" and a `Strip` decoder, as transformers' `LlamaTokenizer`
    /// builds from the GGUF; merges in score order).
    static func sentencePieceHuggingFaceFiles(parts: TokenizerParts, core: TokenizerCore, file: String,
                                              architecture: String, chatTemplate: String?,
                                              modelMaxLength: Int?) throws -> (tokenizerJSON: [UInt8], tokenizerConfigJSON: [UInt8]) {
        let gemma = architecture.hasPrefix("gemma")
        guard let spm = parts.sentencePiece, !spm.splitWords, spm.spacePrefix == (gemma ? .never : .first) else {
            throw FormatError(file: file, "this SentencePiece vocabulary's rule for `▁` has no tokenizer.json form LangTune writes (Gemma: none; others: before the text); merge to GGUF (--format gguf)")
        }
        let pieces = spm.pieces
        // The vocabulary as a Python dict of the respelled tokens: a repeated spelling keeps its last id.
        var table = ByteStringTable(capacity: max(pieces.count, 1))
        for (id, piece) in pieces.enumerated() { table.set(piece, Int32(id)) }
        var vocab: [(String, JSONText)] = []
        vocab.reserveCapacity(pieces.count)
        for (id, piece) in pieces.enumerated() where table.get(piece) == Int32(id) {
            vocab.append((String(decoding: piece, as: UTF8.self), .int(id)))
        }
        let merges = (gemma ? gemmaMerges(pieces: pieces, table: table) : rankedMerges(pieces: pieces, table: table, rank: spm.rank)).map { id, right in
            JSONText.array([.string(String(decoding: pieces[id].prefix(right.lowerBound), as: UTF8.self)),
                            .string(String(decoding: pieces[id][right], as: UTF8.self))])
        }

        // Added tokens: control as special, user-defined as plain (`add_gguf_special_tokens`), and the
        // special tokens GemmaTokenizer registers itself, all matched in the raw text.
        var added: [Int32: AddedTokenSpec] = [:]
        for a in parts.added { added[a.id] = AddedTokenSpec(id: a.id, content: a.content, special: a.special) }
        let unknownId = spm.unknownId >= 0 ? Int(spm.unknownId) : nil
        for id in [core.bosTokenId, core.eosTokenId, core.padTokenId, unknownId].compactMap({ $0 }) where id < parts.vocab.count {
            added[Int32(id)] = AddedTokenSpec(id: Int32(id), content: Array(parts.vocab[id].text.utf8), special: true)
        }
        let addedList = added.values.sorted { $0.id < $1.id }
        func text(_ id: Int) -> String? { id < parts.vocab.count ? parts.vocab[id].text : nil }

        func replace(_ from: String, _ to: String) -> JSONText {
            .object([("type", .string("Replace")), ("pattern", .object([("String", .string(from))])), ("content", .string(to))])
        }
        let postProcessor = try templatePostProcessor(core: core, text: text, pairSpecialTypeId: 1, file: file) ?? .null
        let unknown = unknownId.flatMap(text)
        let tokenizer: JSONText = .object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(addedList.map { addedTokenJSON($0, withId: true) })),
            ("normalizer", gemma ? replace(" ", "▁") : .null),
            ("pre_tokenizer", gemma
                ? .object([("type", .string("Split")), ("pattern", .object([("String", .string(" "))])),
                           ("behavior", .string("MergedWithPrevious")), ("invert", .bool(false))])
                : .object([("type", .string("Metaspace")), ("replacement", .string("▁")),
                           ("prepend_scheme", .string("first")), ("split", .bool(false))])),
            ("post_processor", postProcessor),
            ("decoder", .object([("type", .string("Sequence")), ("decoders", .array([
                replace("▁", " "), .object([("type", .string("ByteFallback"))]), .object([("type", .string("Fuse"))])]
                + (gemma ? [] : [.object([("type", .string("Strip")), ("content", .string(" ")), ("start", .int(1)), ("stop", .int(0))])])))])),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", unknown.map { .string($0) } ?? .null),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null),
                ("fuse_unk", .bool(true)), ("byte_fallback", .bool(true)), ("ignore_merges", .bool(false)),
                ("vocab", .object(vocab)), ("merges", .array(merges)),
            ])),
        ])

        let config = tokenizerConfigJSON(core: core, added: addedList, text: text, chatTemplate: chatTemplate,
                                         modelMaxLength: modelMaxLength, addPrefixSpace: nil, unknownToken: unknown)
        return (tokenizer.serialized(), config.serialized())
    }

    /// transformers' `generate_merges` with the GGUF's scores, as LangTune ranks them (`rank`, best
    /// first): every split of every token into two vocabulary entries, by the merged token's rank, then
    /// by the left piece's length in scalars, longest first. Returns (merged id, byte range of the right piece).
    static func rankedMerges(pieces: [[UInt8]], table: ByteStringTable, rank: [Int32]) -> [(Int, Range<Int>)] {
        let byId = gemmaMerges(pieces: pieces, table: table)
        // gemmaMerges lists each token's splits together, longest left first; a stable sort by rank keeps that.
        let order = byId.indices.sorted { a, b in
            let ra = rank[byId[a].0], rb = rank[byId[b].0]
            return ra != rb ? ra < rb : a < b
        }
        return order.map { byId[$0] }
    }

    /// transformers' `generate_merges` with the negated token index as the score: every split of every
    /// token into two vocabulary entries, ordered by the merged token's (last) index, then by the left
    /// piece's length in scalars, longest first. Returns (merged id, byte range of the right piece).
    static func gemmaMerges(pieces: [[UInt8]], table: ByteStringTable) -> [(Int, Range<Int>)] {
        var out: [(Int, Range<Int>)] = []
        out.reserveCapacity(pieces.count * 2)
        for (id, piece) in pieces.enumerated() where table.get(piece) == Int32(id) && piece.count > 1 {
            piece.withUnsafeBufferPointer { p in
                let base = p.baseAddress!
                var cut = p.count - 1
                while cut > 0 {
                    if p[cut] & 0xC0 != 0x80, table.get(base, cut) >= 0, table.get(base + cut, p.count - cut) >= 0 {
                        out.append((id, cut..<p.count))
                    }
                    cut -= 1
                }
            }
        }
        return out
    }
}
