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
    /// Put the BOS (EOS) id before (after) the text when special tokens are added.
    var addBOS = false
    var addEOS = false

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
        var decoded = [[UInt8]?](repeating: nil, count: vocabSize)
        var literal = [String?](repeating: nil, count: vocabSize)
        for (text, id) in vocab {
            if let bytes = ByteLevelAlphabet.bytes(of: text) {
                table.set(bytes, Int32(id))
                decoded[id] = bytes
            } else {
                let utf8 = Array(text.utf8)
                unmapped.set(utf8, Int32(id))
                decoded[id] = utf8
            }
            literal[id] = text
        }

        func lookup(_ text: String) -> Int32 {
            if let bytes = ByteLevelAlphabet.bytes(of: text) { return table.get(bytes) }
            return unmapped.get(Array(text.utf8))
        }
        var mergeTable = MergeTable(capacity: max(merges.count, 1))
        for (rank, (a, b)) in merges.enumerated() {
            let left = lookup(a), right = lookup(b), merged = lookup(a + b)
            guard left >= 0, right >= 0, merged >= 0 else {
                let missing = left < 0 ? a : right < 0 ? b : a + b
                throw FormatError(file: file, "merge \(rank) \"\(a) \(b)\": \(missing.debugDescription) is not in the vocabulary")
            }
            mergeTable.set(left: left, right: right, rank: UInt32(rank), merged: merged)
        }
        let byteIds: [Int32] = (0..<256).map { table.get([UInt8($0)]) }
        var unknownId: Int32 = -1
        if let unk = unknownToken {
            unknownId = lookup(unk)
            if unknownId < 0, let a = added.first(where: { $0.content == Array(unk.utf8) }) { unknownId = a.id }
            guard unknownId >= 0 else { throw FormatError(file: file, "unk_token \(unk.debugDescription) is not in the vocabulary") }
        }

        var special = [Bool](repeating: false, count: vocabSize)
        var addedByContent = ByteStringTable(capacity: max(added.count, 1))
        for token in added {
            let id = Int(token.id)
            // The byte-level decoder maps a token's characters back to bytes when all of them
            // are in its alphabet, and otherwise keeps the token's own UTF-8.
            let text = String(decoding: token.content, as: UTF8.self)
            decoded[id] = ByteLevelAlphabet.bytes(of: text) ?? token.content
            literal[id] = text
            special[id] = token.special
            addedByContent.set(token.content, token.id)
        }

        var tokenText: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(vocabSize + 1)
        for id in 0..<vocabSize {
            if let d = decoded[id] { tokenText.append(contentsOf: d) }
            guard tokenText.count < Int(Int32.max) else { throw FormatError(file: file, "token texts are too large") }
            offsets.append(Int32(tokenText.count))
        }

        func resolve(_ token: String?, _ id: Int?, _ what: String) throws -> (String?, Int?) {
            if let id {
                guard id >= 0, id < vocabSize else { throw FormatError(file: file, "\(what) id \(id) is out of range") }
                return (token ?? literal[id], id)
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

        let raw = added.filter { !$0.normalized }
        let normalized = added.filter { $0.normalized }
        return TokenizerCore(
            bpe: BPEModel(vocab: table, merges: mergeTable, byteIds: byteIds, ignoreMerges: ignoreMerges,
                          unknownId: unknownId, fuseUnknown: fuseUnknown),
            preTokenizer: preTokenizer,
            rawAdded: AddedTokenMatcher(raw), normalizedAdded: AddedTokenMatcher(normalized),
            addedByContent: addedByContent, unmappedVocab: unmapped,
            prefixIds: prefixIds, suffixIds: suffixIds, vocabSize: vocabSize,
            tokenText: tokenText, tokenOffsets: offsets, special: special,
            bosTokenId: bosId, eosTokenId: eosId, bosToken: bosText, eosToken: eosText)
    }
}
