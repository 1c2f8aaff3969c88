/// The pieces both loaders (tokenizer.json, GGUF) gather before building a `TokenizerCore`.
struct TokenizerParts {
    var file: String
    /// Vocabulary strings (byte-level alphabet) and their ids, in file order.
    var vocab: [(text: String, id: Int)] = []
    var merges: [(String, String)] = []
    var added: [AddedTokenSpec] = []
    var ignoreMerges = false
    var unknownToken: String?
    var fuseUnknown = false
    var preTokenizer = PreTokenizer(steps: [], addPrefixSpace: false)
    var prefixIds: [Int] = []
    var suffixIds: [Int] = []
    var bosToken: String?
    var bosTokenId: Int?
    var eosToken: String?
    var eosTokenId: Int?
    var padToken: String?
    var padTokenId: Int?
    /// Put the BOS (EOS) id before (after) the text when special tokens are added.
    var addBOS = false
    var addEOS = false
    /// Set for SentencePiece-style vocabularies (GGUF `llama`): `vocab` then holds the file's
    /// literal token strings, and encoding runs `SentencePieceBPE` instead of byte-level BPE.
    var sentencePiece: SentencePieceParts?
    /// The decoder drops one space that starts the decoded text (`tokenizers`' `Strip` decoder after
    /// `Fuse`: the `▁` Llama 2 and Mistral put before the text).
    var stripLeadingSpace = false

    /// Ids above this are refused (a corrupt file must not make us allocate gigabytes).
    static let maxId = 1 << 24

    func build() throws -> TokenizerCore {
        var maxSeen = -1
        for (text, id) in vocab {
            guard id >= 0, id < TokenizerParts.maxId else {
                throw FormatError(file: file, "vocabulary id \(id) of \(text.debugDescription) is out of range")
            }
            maxSeen = max(maxSeen, id)
        }
        for token in added {
            guard token.id >= 0, Int(token.id) < TokenizerParts.maxId else {
                throw FormatError(file: file, "added token id \(token.id) is out of range")
            }
            maxSeen = max(maxSeen, Int(token.id))
        }
        guard maxSeen >= 0 else { throw FormatError(file: file, "the vocabulary is empty") }
        let vocabSize = maxSeen + 1

        var table = ByteStringTable(capacity: vocab.count)
        var unmapped = ByteStringTable(capacity: 16)
        // Decoded bytes of vocabulary entries, in entry order; per id the entry that holds it.
        var entryText: [UInt8] = []
        var entryStart: [Int] = []
        entryStart.reserveCapacity(vocab.count + 1)
        var entryForId = [Int32](repeating: -1, count: vocabSize)
        var key: [UInt8] = []
        for (index, (text, id)) in vocab.enumerated() {
            key.removeAll(keepingCapacity: true)
            if let spm = sentencePiece {
                // Literal strings answer `id(forToken:)`; the decoded bytes are what the ids spell.
                unmapped.set(Array(text.utf8), Int32(id))
                key = spm.decoded[id]
            } else if ByteLevelAlphabet.appendBytes(of: text, to: &key) {
                table.set(key, Int32(id))
            } else {
                key = Array(text.utf8)
                unmapped.set(key, Int32(id))
            }
            entryStart.append(entryText.count)
            entryText.append(contentsOf: key)
            entryForId[id] = Int32(index)
        }
        entryStart.append(entryText.count)

        func lookup(_ text: String) -> Int32 {
            if let bytes = ByteLevelAlphabet.bytes(of: text) { return table.get(bytes) }
            return unmapped.get(Array(text.utf8))
        }
        var mergeTable = MergeTable(capacity: max(merges.count, 1))
        for (rank, (a, b)) in merges.enumerated() {
            var left: Int32 = -1, right: Int32 = -1, merged: Int32 = -1
            key.removeAll(keepingCapacity: true)
            if ByteLevelAlphabet.appendBytes(of: a, to: &key) {
                let split = key.count
                if ByteLevelAlphabet.appendBytes(of: b, to: &key) {
                    key.withUnsafeBufferPointer { k in
                        guard let p = k.baseAddress, split > 0, k.count > split else { return }
                        left = table.get(p, split)
                        right = table.get(p + split, k.count - split)
                        merged = table.get(p, k.count)
                    }
                }
            }
            if left < 0 || right < 0 || merged < 0 {
                // Tokens outside the byte-level alphabet (or empty ones) take the slow path.
                left = lookup(a)
                right = lookup(b)
                merged = lookup(a + b)
            }
            guard left >= 0, right >= 0, merged >= 0 else {
                let missing = left < 0 ? a : right < 0 ? b : a + b
                throw FormatError(file: file, "merge \(rank) \"\(a) \(b)\": \(missing.debugDescription) is not in the vocabulary")
            }
            mergeTable.set(left: left, right: right, rank: UInt32(rank), merged: merged)
        }
        let byteIds: [Int32] = (0..<256).map { table.get([UInt8($0)]) }
        var unknownId: Int32 = -1
        if let spm = sentencePiece {
            unknownId = spm.unknownId  // looked up by its loader, in the SentencePiece vocabulary
        } else if let unk = unknownToken {
            unknownId = lookup(unk)
            if unknownId < 0, let a = added.first(where: { $0.content == Array(unk.utf8) }) { unknownId = a.id }
            guard unknownId >= 0 else { throw FormatError(file: file, "unk_token \(unk.debugDescription) is not in the vocabulary") }
        }

        var special = [Bool](repeating: false, count: vocabSize)
        var addedByContent = ByteStringTable(capacity: max(added.count, 1))
        var addedForId = [Int32](repeating: -1, count: vocabSize)
        var addedText: [[UInt8]] = []
        for (index, token) in added.enumerated() {
            let id = Int(token.id)
            // The byte-level decoder maps a token's characters back to bytes when all of them
            // are in its alphabet, and otherwise keeps the token's own UTF-8; a SentencePiece
            // decoder only spells `▁` as a space.
            if sentencePiece != nil {
                addedText.append(GGUFTokenizerLoader.replacingMetaSpace(token.content))
            } else {
                addedText.append(ByteLevelAlphabet.bytes(of: String(decoding: token.content, as: UTF8.self)) ?? token.content)
            }
            addedForId[id] = Int32(index)
            special[id] = token.special
            addedByContent.set(token.content, token.id)
        }
        /// The literal string of an id (added token content first, as `id_to_token`).
        func literal(_ id: Int) -> String? {
            if addedForId[id] >= 0 { return String(decoding: added[Int(addedForId[id])].content, as: UTF8.self) }
            if entryForId[id] >= 0 { return vocab[Int(entryForId[id])].text }
            return nil
        }

        var tokenText: [UInt8] = []
        tokenText.reserveCapacity(entryText.count + 16 * added.count)
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(vocabSize + 1)
        for id in 0..<vocabSize {
            if addedForId[id] >= 0 {
                tokenText.append(contentsOf: addedText[Int(addedForId[id])])
            } else if entryForId[id] >= 0 {
                let e = Int(entryForId[id])
                tokenText.append(contentsOf: entryText[entryStart[e]..<entryStart[e + 1]])
            }
            guard tokenText.count < Int(Int32.max) else { throw FormatError(file: file, "token texts are too large") }
            offsets.append(Int32(tokenText.count))
        }

        func resolve(_ token: String?, _ id: Int?, _ what: String) throws -> (String?, Int?) {
            if let id {
                guard id >= 0, id < vocabSize else { throw FormatError(file: file, "\(what) id \(id) is out of range") }
                return (token ?? literal(id), id)
            }
            guard let token else { return (nil, nil) }
            let addedId = addedByContent.get(Array(token.utf8))
            if addedId >= 0 { return (token, Int(addedId)) }
            let vocabId = lookup(token)
            guard vocabId >= 0 else { throw FormatError(file: file, "\(what) \(token.debugDescription) is not in the vocabulary") }
            return (token, Int(vocabId))
        }
        let (bosText, bosId) = try resolve(bosToken, bosTokenId, "BOS token")
        let (eosText, eosId) = try resolve(eosToken, eosTokenId, "EOS token")
        // A pad token the vocabulary lacks (transformers would append it) is left out rather than refused.
        let padId = padTokenId != nil ? try resolve(nil, padTokenId, "padding token").1
            : padToken.flatMap { try? resolve($0, nil, "padding token").1 }
        var prefixIds = self.prefixIds, suffixIds = self.suffixIds
        if addBOS {
            guard let bosId else { throw FormatError(file: file, "BOS is to be added but there is no BOS token") }
            prefixIds.append(bosId)
        }
        if addEOS {
            guard let eosId else { throw FormatError(file: file, "EOS is to be added but there is no EOS token") }
            suffixIds.append(eosId)
        }
        for id in prefixIds + suffixIds where id < 0 || id >= vocabSize {
            throw FormatError(file: file, "post-processor id \(id) is out of range")
        }

        var spmModel: SentencePieceBPE?
        if let spm = sentencePiece {
            var pieces = ByteStringTable(capacity: spm.pieces.count)
            // Later duplicates win, as in a Python dict built from the token list.
            for (id, piece) in spm.pieces.enumerated() where !piece.isEmpty { pieces.set(piece, Int32(id)) }
            spmModel = SentencePieceBPE(vocab: pieces, rank: spm.rank, pairMerges: spm.pairMerges, byteIds: spm.byteIds,
                                        unknownId: spm.unknownId, spacePrefix: spm.spacePrefix,
                                        splitWords: spm.splitWords)
        }
        let raw = added.filter { !$0.normalized }
        let normalized = added.filter { $0.normalized }
        return TokenizerCore(
            bpe: BPEModel(vocab: table, merges: mergeTable, byteIds: byteIds, ignoreMerges: ignoreMerges,
                          unknownId: unknownId, fuseUnknown: fuseUnknown),
            sentencePiece: spmModel,
            preTokenizer: preTokenizer,
            rawAdded: AddedTokenMatcher(raw), normalizedAdded: AddedTokenMatcher(normalized),
            addedByContent: addedByContent, unmappedVocab: unmapped,
            prefixIds: prefixIds, suffixIds: suffixIds, vocabSize: vocabSize,
            tokenText: tokenText, tokenOffsets: offsets, special: special,
            bosTokenId: bosId, eosTokenId: eosId, padTokenId: padId, bosToken: bosText, eosToken: eosText,
            stripLeadingSpace: stripLeadingSpace)
    }
}

/// What a SentencePiece-style vocabulary adds to `TokenizerParts`, per id.
struct SentencePieceParts {
    /// The `▁`-spelled piece the merging looks up (empty: never produced by merging, e.g. control tokens).
    var pieces: [[UInt8]]
    /// The bytes the id decodes to (`▁` as a space, `<0xXX>` as its byte).
    var decoded: [[UInt8]]
    /// Merge rank per merged entry (`Int32.max`: never merged). GGUF vocabularies merge by it; for a
    /// `tokenizer.json`, whose `pairMerges` rank instead, it is the best rank of a pair making the
    /// entry (what a GGUF export turns into scores).
    var rank: [Int32]
    /// Ranks per pair of ids, from a `tokenizer.json`'s merges.
    var pairMerges: MergeTable? = nil
    var byteIds: [Int32]
    var unknownId: Int32
    var spacePrefix: SpacePrefix
    var splitWords = false
}
