/// `tokenizer.json` files of SentencePiece-style BPE (`byte_fallback`: Gemma's form, as Google ships
/// it and as transformers writes it from a GGUF): the `▁`-spelled vocabulary, merges ranked per pair
/// of ids, `<0xXX>` tokens for bytes the vocabulary lacks.
extension HuggingFaceTokenizerLoader {
    /// The SentencePiece parts of a byte-fallback BPE: pieces and decoded bytes per id, the merge
    /// table, the byte tokens. Keyed by bytes throughout (Gemma has 434 pairs of tokens equal under NFC).
    func sentencePieceParts(vocab: [(text: String, id: Int)], merges: [(String, String)],
                            unknownToken: String?) throws -> SentencePieceParts {
        var count = 0
        for (text, id) in vocab {
            guard id >= 0, id < TokenizerParts.maxId else {
                throw fail("vocabulary id \(id) of \(text.debugDescription) is out of range")
            }
            count = max(count, id + 1)
        }
        var pieces = [[UInt8]](repeating: [], count: count)
        var decoded = [[UInt8]](repeating: [], count: count)
        var table = ByteStringTable(capacity: max(vocab.count, 1))
        for (text, id) in vocab {
            let bytes = Array(text.utf8)
            pieces[id] = bytes
            table.set(bytes, Int32(id))
            // `ByteFallback` turns any `<0xXX>` token into its byte; `Replace` spells `▁` as a space.
            if let b = GGUFTokenizerLoader.byteToken(text) { decoded[id] = [b] } else {
                decoded[id] = GGUFTokenizerLoader.replacingMetaSpace(bytes)
            }
        }
        // `tokenizers` falls back to the tokens spelled `<0x%02X>`.
        let hex = Array("0123456789ABCDEF".utf8)
        let byteIds: [Int32] = (0..<256).map { b in
            table.get([0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E])
        }
        var mergeTable = MergeTable(capacity: max(merges.count, 1))
        for (rank, (a, b)) in merges.enumerated() {
            let left = Array(a.utf8), right = Array(b.utf8)
            let l = table.get(left), r = table.get(right), m = table.get(left + right)
            guard l >= 0, r >= 0, m >= 0 else {
                let missing = l < 0 ? a : r < 0 ? b : a + b
                throw fail("merge \(rank) \"\(a) \(b)\": \(missing.debugDescription) is not in the vocabulary")
            }
            mergeTable.set(left: l, right: r, rank: UInt32(rank), merged: m)
        }
        var unknownId: Int32 = -1
        if let unknownToken {
            unknownId = table.get(Array(unknownToken.utf8))
            guard unknownId >= 0 else { throw fail("unk_token \(unknownToken.debugDescription) is not in the vocabulary") }
        }
        return SentencePieceParts(pieces: pieces, decoded: decoded, rank: [], pairMerges: mergeTable, byteIds: byteIds,
                                  unknownId: unknownId, addSpacePrefix: false)
    }

    /// Accepts the text handling `SentencePieceBPE` reproduces, Gemma's: normalizer `Replace " " → "▁"`,
    /// no pre-tokenizer or a `Split " "` (a no-op once spaces are `▁`), decoder `Replace "▁" → " "`,
    /// `ByteFallback`, `Fuse`. Others (Llama 2's `Prepend`, `Metaspace`, `Strip`) are refused rather than
    /// run with different ids.
    func checkSentencePieceText(_ root: JSONValue) throws {
        func isString(_ v: JSONValue?, _ s: String) -> Bool { v?["String"]?.string == s }
        func isReplace(_ v: JSONValue, _ from: String, _ to: String) -> Bool {
            type(v) == "Replace" && isString(v["pattern"], from) && v["content"]?.string == to
        }
        let supported = "supported with byte_fallback BPE: Gemma's normalizer Replace \" \" → \"▁\", decoder Replace/ByteFallback/Fuse"
        let normalizer = root["normalizer"] ?? .null
        let steps = type(normalizer) == "Sequence" ? normalizer["normalizers"]?.array ?? [] : [normalizer]
        guard steps.count == 1, isReplace(steps[0], " ", "▁") else {
            throw fail("normalizer \(normalizer.isNull ? "null" : type(normalizer)) is not supported (\(supported))")
        }
        let pre = root["pre_tokenizer"] ?? .null
        if !pre.isNull {
            guard type(pre) == "Split", isString(pre["pattern"], " "), pre["invert"]?.bool != true else {
                throw fail("pre-tokenizer \(type(pre)) is not supported (\(supported))")
            }
        }
        let decoder = root["decoder"] ?? .null
        let decoders = type(decoder) == "Sequence" ? decoder["decoders"]?.array ?? [] : [decoder]
        guard decoders.count == 3, isReplace(decoders[0], "▁", " "), type(decoders[1]) == "ByteFallback",
              type(decoders[2]) == "Fuse" else {
            throw fail("decoder \(decoder.isNull ? "null" : type(decoder)) is not supported (\(supported))")
        }
    }
}
