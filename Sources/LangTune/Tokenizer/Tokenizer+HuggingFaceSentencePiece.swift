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
        var ranks = [Int32](repeating: Int32.max, count: count)
        for (rank, (a, b)) in merges.enumerated() {
            let left = Array(a.utf8), right = Array(b.utf8)
            let l = table.get(left), r = table.get(right), m = table.get(left + right)
            guard l >= 0, r >= 0, m >= 0 else {
                let missing = l < 0 ? a : r < 0 ? b : a + b
                throw fail("merge \(rank) \"\(a) \(b)\": \(missing.debugDescription) is not in the vocabulary")
            }
            mergeTable.set(left: l, right: r, rank: UInt32(rank), merged: m)
            ranks[Int(m)] = min(ranks[Int(m)], Int32(rank))
        }
        var unknownId: Int32 = -1
        if let unknownToken {
            unknownId = table.get(Array(unknownToken.utf8))
            guard unknownId >= 0 else { throw fail("unk_token \(unknownToken.debugDescription) is not in the vocabulary") }
        }
        return SentencePieceParts(pieces: pieces, decoded: decoded, rank: ranks, pairMerges: mergeTable, byteIds: byteIds,
                                  unknownId: unknownId, spacePrefix: .never)
    }

    /// transformers 5 builds a `LlamaTokenizer`'s text handling itself and reads only the vocabulary,
    /// merges and added tokens from tokenizer.json, so a folder whose tokenizer_config.json names that
    /// class gets its rules whatever the file says (Llama 2's and Mistral's Hub files hold a `Prepend`
    /// normalizer that transformers 5 no longer runs): Metaspace without word splitting, `▁` before
    /// the first segment (`legacy`, default false: every segment; `add_prefix_space` false: none),
    /// and the decoder's `Strip` with the prefix. nil for any other class: the file decides.
    func llamaTokenizerText(_ config: JSONValue?) throws -> (prefix: SpacePrefix, splitWords: Bool, stripLeadingSpace: Bool)? {
        guard let config, let name = config["tokenizer_class"]?.string,
              name == "LlamaTokenizer" || name == "LlamaTokenizerFast" else { return nil }
        let addPrefixSpace = config["add_prefix_space"]?.bool ?? true
        let legacy = config["legacy"]?.bool ?? false
        return (addPrefixSpace ? (legacy ? .always : .first) : .never, false, addPrefixSpace)
    }

    /// The text handling of a byte-fallback BPE, if it is one `SentencePieceBPE` reproduces:
    /// - Gemma: normalizer `Replace " " → "▁"`, no pre-tokenizer or a `Split " "` (a no-op once
    ///   spaces are `▁`), decoder `Replace "▁" → " "`, `ByteFallback`, `Fuse`;
    /// - Llama 2 and Mistral as first published: normalizer `Prepend "▁"` then that `Replace`, no
    ///   pre-tokenizer, the same decoder then `Strip` (one leading space);
    /// - as transformers 4.4x and 5 write them: no normalizer, pre-tokenizer `Metaspace` (`▁`, any
    ///   `prepend_scheme` or the older `add_prefix_space`, `split` either way), the same decoders.
    /// Others are refused rather than run with different ids.
    func sentencePieceText(_ root: JSONValue) throws -> (prefix: SpacePrefix, splitWords: Bool, stripLeadingSpace: Bool) {
        func isString(_ v: JSONValue?, _ s: String) -> Bool { v?["String"]?.string == s }
        func isReplace(_ v: JSONValue, _ from: String, _ to: String) -> Bool {
            type(v) == "Replace" && isString(v["pattern"], from) && v["content"]?.string == to
        }
        let supported = "supported with byte_fallback BPE: normalizer Replace \" \" → \"▁\" (Gemma) or Prepend \"▁\" + Replace (Llama 2, Mistral), or a Metaspace pre-tokenizer; decoder Replace/ByteFallback/Fuse with or without Strip"
        var prefix = SpacePrefix.never
        var splitWords = false
        let normalizer = root["normalizer"] ?? .null
        let pre = root["pre_tokenizer"] ?? .null
        if normalizer.isNull {
            guard type(pre) == "Metaspace" else {
                throw fail("pre-tokenizer \(pre.isNull ? "null" : type(pre)) with no normalizer is not supported (\(supported))")
            }
            guard pre["replacement"]?.string == "▁" else {
                throw fail("Metaspace replacement \(pre["replacement"]?.string?.debugDescription ?? "(none)") is not supported (only \"▁\")")
            }
            if let scheme = pre["prepend_scheme"]?.string {
                switch scheme {
                case "first": prefix = .first
                case "always": prefix = .always
                case "never": prefix = .never
                default: throw fail("Metaspace prepend_scheme \(scheme.debugDescription) is not one of first, always, never")
                }
            } else {
                // Files from before `prepend_scheme`: `add_prefix_space` (default true) meant "always".
                prefix = pre["add_prefix_space"]?.bool ?? true ? .always : .never
            }
            splitWords = pre["split"]?.bool ?? true
        } else {
            let steps = type(normalizer) == "Sequence" ? normalizer["normalizers"]?.array ?? [] : [normalizer]
            if steps.count == 1, isReplace(steps[0], " ", "▁") {
                prefix = .never
            } else if steps.count == 2, type(steps[0]) == "Prepend", steps[0]["prepend"]?.string == "▁", isReplace(steps[1], " ", "▁") {
                prefix = .everySegment
            } else {
                throw fail("normalizer \(type(normalizer)) is not supported (\(supported))")
            }
            if !pre.isNull {
                guard type(pre) == "Split", isString(pre["pattern"], " "), pre["invert"]?.bool != true else {
                    throw fail("pre-tokenizer \(type(pre)) is not supported (\(supported))")
                }
            }
        }
        let decoder = root["decoder"] ?? .null
        let decoders = type(decoder) == "Sequence" ? decoder["decoders"]?.array ?? [] : [decoder]
        guard decoders.count == 3 || decoders.count == 4, isReplace(decoders[0], "▁", " "), type(decoders[1]) == "ByteFallback",
              type(decoders[2]) == "Fuse" else {
            throw fail("decoder \(decoder.isNull ? "null" : type(decoder)) is not supported (\(supported))")
        }
        var strip = false
        if decoders.count == 4 {
            let d = decoders[3]
            guard type(d) == "Strip", d["content"]?.string == " ", d["start"]?.int == 1, d["stop"]?.int == 0 else {
                throw fail("decoder step \(type(d)) is not supported (only Strip of one leading space)")
            }
            strip = true
        }
        return (prefix, splitWords, strip)
    }
}
