import Foundation

extension Tokenizer {
    /// Loads a Hugging Face `tokenizer.json` (byte-level BPE, or the SentencePiece-style BPE with
    /// `byte_fallback` of Gemma, Llama 2 and Mistral) and, if given, `tokenizer_config.json`
    /// (BOS/EOS token strings, `add_bos_token`). `file` names the source in errors.
    ///
    /// BOS/EOS added by `encode(addSpecialTokens: true)` come from the post-processor's
    /// `TemplateProcessing`; only when there is none do `add_bos_token`/`add_eos_token` decide.
    public convenience init(tokenizerJSON: Data, tokenizerConfigJSON: Data?, file: String) throws {
        let parts = try HuggingFaceTokenizerLoader(file: file).load(tokenizerJSON, tokenizerConfigJSON)
        self.init(core: try parts.build())
    }
}

/// Reads tokenizer.json into `TokenizerParts`, refusing what it cannot reproduce exactly.
struct HuggingFaceTokenizerLoader {
    let file: String

    func fail(_ problem: String) -> FormatError { FormatError(file: file, problem) }

    private func parse(_ data: Data, _ name: String) throws -> JSONValue {
        do {
            return try MiniJSONParser.parse(data)
        } catch {
            throw fail("\(name) is not valid JSON: \(error.message) at byte \(error.offset)")
        }
    }

    func type(_ v: JSONValue) -> String { v["type"]?.string ?? "(no type)" }

    func load(_ json: Data, _ configJSON: Data?) throws -> TokenizerParts {
        let root = try parse(json, "tokenizer.json")
        guard root.object != nil else { throw fail("tokenizer.json is not a JSON object") }
        var parts = TokenizerParts(file: file)

        // Model
        guard let model = root["model"], model.object != nil else { throw fail("tokenizer.json has no model") }
        if let t = model["type"]?.string, t != "BPE" {
            throw fail("model type \(t) is not supported (only byte-level BPE)")
        }
        if let dropout = model["dropout"], !dropout.isNull, dropout.number != 0 {
            throw fail("BPE dropout is not supported")
        }
        let byteFallback = model["byte_fallback"]?.bool == true
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], let s = v.string, !s.isEmpty { throw fail("BPE \(key) is not supported") }
        }
        parts.ignoreMerges = model["ignore_merges"]?.bool ?? false
        parts.unknownToken = model["unk_token"]?.string
        parts.fuseUnknown = model["fuse_unk"]?.bool ?? false
        guard let vocab = model["vocab"]?.object else { throw fail("model.vocab is missing") }
        parts.vocab.reserveCapacity(vocab.keys.count)
        for (key, value) in zip(vocab.keys, vocab.values) {
            guard let id = value.int else { throw fail("model.vocab[\(key.debugDescription)] is not an integer") }
            parts.vocab.append((key, id))
        }
        guard let merges = model["merges"]?.array else { throw fail("model.merges is missing") }
        var mergeList: [(String, String)] = []
        mergeList.reserveCapacity(merges.count)
        for (i, merge) in merges.enumerated() {
            if let s = merge.string {
                guard let space = s.utf8.firstIndex(of: 0x20) else { throw fail("merge \(i) \(s.debugDescription) has no space") }
                let a = String(s[..<space])
                let b = String(s[s.utf8.index(after: space)...])
                mergeList.append((a, b))
            } else if let pair = merge.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                mergeList.append((a, b))
            } else {
                throw fail("merge \(i) is neither \"a b\" nor [a, b]")
            }
        }
        if byteFallback {
            guard !parts.ignoreMerges else { throw fail("ignore_merges with byte_fallback BPE is not supported") }
            parts.sentencePiece = try sentencePieceParts(vocab: parts.vocab, merges: mergeList, unknownToken: parts.unknownToken)
        } else {
            parts.merges = mergeList
        }

        // Added tokens
        for (i, entry) in (root["added_tokens"]?.array ?? []).enumerated() {
            guard let id = entry["id"]?.int, let content = entry["content"]?.string else {
                throw fail("added_tokens[\(i)] lacks id or content")
            }
            guard id >= 0, id < TokenizerParts.maxId else { throw fail("added_tokens[\(i)] id \(id) is out of range") }
            let special = entry["special"]?.bool ?? false
            parts.added.append(AddedTokenSpec(
                id: Int32(id), content: Array(content.utf8), special: special,
                singleWord: entry["single_word"]?.bool ?? false,
                lstrip: entry["lstrip"]?.bool ?? false,
                rstrip: entry["rstrip"]?.bool ?? false,
                normalized: entry["normalized"]?.bool ?? !special))
        }

        let config = try configJSON.map { try parse($0, "tokenizer_config.json") }
        if byteFallback {
            let text = try llamaTokenizerText(config) ?? sentencePieceText(root)
            parts.sentencePiece?.spacePrefix = text.prefix
            parts.sentencePiece?.splitWords = text.splitWords
            parts.stripLeadingSpace = text.stripLeadingSpace
        } else {
            if let normalizer = root["normalizer"], !normalizer.isNull {
                throw fail("normalizer \(type(normalizer)) is not supported (byte-level BPE tokenizers have none)")
            }
            parts.preTokenizer = try preTokenizer(root["pre_tokenizer"] ?? .null)
            try checkDecoder(root["decoder"] ?? .null)
        }
        let hasTemplate = try postProcessor(root["post_processor"] ?? .null, into: &parts)

        // tokenizer_config.json
        if let config {
            func tokenString(_ key: String) -> String? {
                guard let v = config[key] else { return nil }
                return v.string ?? v["content"]?.string
            }
            if let bos = tokenString("bos_token") { parts.bosToken = bos; parts.bosTokenId = nil }
            if let eos = tokenString("eos_token") { parts.eosToken = eos }
            if let pad = tokenString("pad_token") { parts.padToken = pad }
            if !hasTemplate {
                parts.addBOS = config["add_bos_token"]?.bool ?? false
                parts.addEOS = config["add_eos_token"]?.bool ?? false
            }
        }
        return parts
    }

    private func preTokenizer(_ v: JSONValue) throws -> PreTokenizer {
        let list: [JSONValue]
        if type(v) == "Sequence" {
            guard let items = v["pretokenizers"]?.array else { throw fail("pre_tokenizer Sequence lacks pretokenizers") }
            list = items
        } else if v.isNull {
            throw fail("there is no pre_tokenizer; only byte-level BPE (a ByteLevel pre-tokenizer) is supported")
        } else {
            list = [v]
        }
        var result = PreTokenizer(steps: [], addPrefixSpace: false)
        for (i, step) in list.enumerated() {
            switch type(step) {
            case "ByteLevel":
                // It maps bytes to the byte-level alphabet, so it must come last.
                guard i == list.count - 1 else { throw fail("a ByteLevel pre-tokenizer before other pre-tokenizers is not supported") }
                if step["use_regex"]?.bool ?? true { result.steps.append(.pattern(.gpt2)) }
                if step["add_prefix_space"]?.bool ?? true {
                    guard i == 0 else { throw fail("ByteLevel add_prefix_space after other pre-tokenizers is not supported") }
                    result.addPrefixSpace = true
                }
            case "Split":
                guard let pattern = step["pattern"] else { throw fail("Split pre-tokenizer lacks a pattern") }
                guard let source = pattern["Regex"]?.string else {
                    throw fail("Split pre-tokenizer with a String pattern is not supported")
                }
                guard let known = SplitPattern(source: source) else {
                    throw fail("Split pre-tokenizer pattern \(source.debugDescription) is not one of the supported (GPT-2, Llama 3, Qwen2) patterns")
                }
                let behavior = step["behavior"]?.string ?? "(none)"
                guard behavior == "Isolated" else { throw fail("Split behavior \(behavior) is not supported (only Isolated)") }
                guard step["invert"]?.bool != true else { throw fail("inverted Split is not supported") }
                result.steps.append(.pattern(known))
            case "Digits":
                guard step["individual_digits"]?.bool == true else {
                    throw fail("Digits pre-tokenizer without individual_digits is not supported")
                }
                result.steps.append(.individualDigits)
            default:
                throw fail("pre-tokenizer \(type(step)) is not supported")
            }
        }
        guard let last = list.last, type(last) == "ByteLevel" else {
            throw fail("the pre-tokenizer has no ByteLevel step; only byte-level BPE is supported")
        }
        return result
    }

    private func checkDecoder(_ v: JSONValue) throws {
        switch type(v) {
        case "ByteLevel": return
        case "Sequence":
            for d in v["decoders"]?.array ?? [] where type(d) != "ByteLevel" {
                throw fail("decoder \(type(d)) is not supported (only ByteLevel)")
            }
        default:
            throw fail("decoder \(v.isNull ? "null" : type(v)) is not supported (only ByteLevel)")
        }
    }

    /// Fills BOS/EOS ids around the text from the post-processor; returns whether it has a template.
    private func postProcessor(_ v: JSONValue, into parts: inout TokenizerParts) throws -> Bool {
        if v.isNull { return false }
        switch type(v) {
        case "ByteLevel":
            return false
        case "Sequence":
            var found = false
            for p in v["processors"]?.array ?? [] {
                if try postProcessor(p, into: &parts) {
                    guard !found else { throw fail("more than one TemplateProcessing post-processor") }
                    found = true
                }
            }
            return found
        case "TemplateProcessing":
            guard let single = v["single"]?.array else { throw fail("TemplateProcessing lacks a single template") }
            let specials = v["special_tokens"]?.object ?? JSONObject()
            var before: [Int] = [], after: [Int] = []
            var seenSequence = false
            var prefixNames: [String] = []
            for piece in single {
                if let seq = piece["Sequence"] {
                    guard seq["id"]?.string == "A", !seenSequence else {
                        throw fail("TemplateProcessing single template must hold sequence A once")
                    }
                    seenSequence = true
                } else if let name = piece["SpecialToken"]?["id"]?.string {
                    guard let ids = specials[name]?["ids"]?.array?.compactMap(\.int), !ids.isEmpty else {
                        throw fail("TemplateProcessing special token \(name.debugDescription) has no ids")
                    }
                    if seenSequence { after += ids } else { before += ids; prefixNames.append(name) }
                } else {
                    throw fail("TemplateProcessing template piece is neither Sequence nor SpecialToken")
                }
            }
            guard seenSequence else { throw fail("TemplateProcessing single template lacks sequence A") }
            parts.prefixIds = before
            parts.suffixIds = after
            // Without tokenizer_config.json, the token the template puts first is the BOS.
            if before.count == 1, prefixNames.count == 1 {
                parts.bosToken = prefixNames[0]
                parts.bosTokenId = before[0]
            }
            return true
        default:
            throw fail("post-processor \(type(v)) is not supported")
        }
    }
}
