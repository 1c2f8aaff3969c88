extension GGUFTokenizerLoader {
    /// A SentencePiece-style vocabulary (`tokenizer.ggml.model` = `llama`): tokens, scores and
    /// types, no merges. Built as transformers builds it from a GGUF, so ids match its tokenizer:
    /// - merge rank: the score (best first), except for Gemma files, whose scores do not follow
    ///   the merge order while the order of the tokens in the file does;
    /// - Gemma stores its runs of spaces as real spaces ("  "); they are looked up as `▁▁`;
    /// - control tokens (3) are special added tokens, user-defined ones (4) plain added tokens
    ///   (both matched whole in the raw text), except the respelled runs of spaces, which merge;
    /// - `<0xXX>` byte tokens (6) are the fallback for scalars the vocabulary lacks;
    /// - `▁` is put before the text only with `tokenizer.ggml.add_space_prefix` (default: on,
    ///   except for Gemma); BOS is added unless `add_bos_token` is false.
    func loadSentencePiece() throws -> TokenizerParts {
        let (tokens, types) = try tokensAndTypes()
        let architecture = metadata["general.architecture"]?.string ?? ""
        let gemma = architecture.hasPrefix("gemma")
        let count = tokens.count

        var pieces: [[UInt8]] = []
        var decoded: [[UInt8]] = []
        pieces.reserveCapacity(count)
        decoded.reserveCapacity(count)
        var respelled = [Bool](repeating: false, count: count)
        var byteIds = [Int32](repeating: -1, count: 256)
        for (id, token) in tokens.enumerated() {
            var piece = Array(token.utf8)
            if gemma, piece.contains(0x20), token.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) {
                piece = Array(repeating: SentencePieceBPE.metaSpace, count: token.unicodeScalars.count).flatMap { $0 }
                respelled[id] = true
            }
            pieces.append(piece)
            if types[id] == 6, let byte = Self.byteToken(token) {
                decoded.append([byte])
                if byteIds[Int(byte)] < 0 { byteIds[Int(byte)] = Int32(id) }
            } else {
                decoded.append(Self.replacingMetaSpace(Array(token.utf8)))
            }
        }

        var rank = [Int32](repeating: 0, count: count)
        if gemma {
            for id in 0..<count { rank[id] = Int32(id) }
        } else {
            guard let scoreValues = metadata["tokenizer.ggml.scores"]?.array else {
                throw fail("tokenizer.ggml.scores is missing (a SentencePiece vocabulary merges by score)")
            }
            guard scoreValues.count == count else {
                throw fail("tokenizer.ggml.scores has \(scoreValues.count) entries for \(count) tokens")
            }
            var scores: [Double] = []
            scores.reserveCapacity(count)
            for (i, v) in scoreValues.enumerated() {
                guard let d = v.double else { throw fail("tokenizer.ggml.scores[\(i)] is not a number") }
                scores.append(d)
            }
            // Best score first; equal scores keep file order (Python's stable sort).
            let order = (0..<count).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            for (r, id) in order.enumerated() { rank[id] = Int32(r) }
        }

        var parts = TokenizerParts(file: file)
        parts.vocab = tokens.enumerated().map { ($0.element, $0.offset) }
        for (id, t) in types.enumerated() where t == 3 || (t == 4 && !respelled[id]) {
            parts.added.append(AddedTokenSpec(id: Int32(id), content: Array(tokens[id].utf8), special: t == 3))
        }
        var unknownId: Int32 = -1
        if let unk = try optionalInt("tokenizer.ggml.unknown_token_id") {
            guard unk >= 0, unk < count else { throw fail("tokenizer.ggml.unknown_token_id \(unk) is out of range") }
            unknownId = Int32(unk)
        } else if let unk = types.firstIndex(of: 2) {
            unknownId = Int32(unk)
        }
        var addSpacePrefix = !gemma
        if let v = metadata["tokenizer.ggml.add_space_prefix"] {
            guard let b = v.bool else { throw fail("tokenizer.ggml.add_space_prefix is not a boolean") }
            addSpacePrefix = b
        }
        parts.sentencePiece = SentencePieceParts(pieces: pieces, decoded: decoded, rank: rank, byteIds: byteIds,
                                                 unknownId: unknownId, spacePrefix: addSpacePrefix ? .first : .never)
        // transformers' LlamaTokenizer decodes with `Strip` (and llama.cpp drops that space too).
        parts.stripLeadingSpace = addSpacePrefix
        try readSpecialIds(into: &parts, addBOSByDefault: true)
        return parts
    }

    /// The byte of a `<0xXX>` token.
    static func byteToken(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    /// `▁` (E2 96 81) spelled as a space.
    static func replacingMetaSpace(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + 2 < bytes.count, bytes[i] == 0xE2, bytes[i + 1] == 0x96, bytes[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
