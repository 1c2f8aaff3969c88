import Foundation

/// Converts a byte-level BPE tokenizer between GGUF `tokenizer.ggml.*` metadata
/// and Hugging Face `tokenizer.json` + `tokenizer_config.json`, so that an
/// exported model tokenizes exactly as its source did.
public enum TokenizerExport {
    /// The tokenizer.json pre-tokenizer for a GGUF `tokenizer.ggml.pre` name.
    static func preTokenizerJSON(pre: String) -> JSONText? {
        func byteLevel(useRegex: Bool) -> JSONText {
            .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
                     ("trim_offsets", .bool(true)), ("use_regex", .bool(useRegex))])
        }
        func split(_ regex: String) -> JSONText {
            .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(regex))])),
                     ("behavior", .string("Isolated")), ("invert", .bool(false))])
        }
        switch pre {
        case "gpt2", "gpt-2": return byteLevel(useRegex: true)
        case "smollm":
            return .object([("type", .string("Sequence")), ("pretokenizers", .array([
                .object([("type", .string("Digits")), ("individual_digits", .bool(true))]),
                byteLevel(useRegex: true)]))])
        case "llama-bpe", "llama3":
            return .object([("type", .string("Sequence")), ("pretokenizers", .array([
                split(SplitPattern.llama3Source), byteLevel(useRegex: false)]))])
        case "qwen2":
            return .object([("type", .string("Sequence")), ("pretokenizers", .array([
                split(SplitPattern.qwen2Source), byteLevel(useRegex: false)]))])
        default: return nil
        }
    }

    /// The GGUF `tokenizer.ggml.pre` name for a pre-tokenizer, or nil when GGUF has none.
    static func preName(_ p: PreTokenizer) -> String? {
        guard !p.addPrefixSpace else { return nil }
        switch p.steps {
        case [.pattern(.gpt2)]: return "gpt2"
        case [.individualDigits, .pattern(.gpt2)]: return "smollm"
        case [.pattern(.llama3)]: return "llama-bpe"
        case [.pattern(.qwen2)]: return "qwen2"
        default: return nil
        }
    }

    /// `tokenizer.json` and `tokenizer_config.json` for the tokenizer a GGUF file describes.
    ///
    /// Vocabulary and merges are copied; control (3) and user-defined (4) tokens become
    /// `added_tokens` (special for control); the pre-tokenizer follows `tokenizer.ggml.pre`;
    /// BOS/EOS the file adds become a `TemplateProcessing` post-processor.
    public static func huggingFaceFiles(ggufMetadata metadata: [String: GGUFValue], file: String,
                                        chatTemplate: String?, modelMaxLength: Int?) throws
        -> (tokenizerJSON: [UInt8], tokenizerConfigJSON: [UInt8]) {
        let parts = try GGUFTokenizerLoader(file: file, metadata: metadata).load()
        if parts.sentencePiece != nil {
            return try sentencePieceHuggingFaceFiles(parts: parts, core: try parts.build(), file: file,
                                                     architecture: metadata["general.architecture"]?.string ?? "",
                                                     chatTemplate: chatTemplate, modelMaxLength: modelMaxLength)
        }
        let pre = metadata["tokenizer.ggml.pre"]?.string ?? ""
        guard let preJSON = preTokenizerJSON(pre: pre) else {
            throw FormatError(file: file, "tokenizer.ggml.pre \(pre.debugDescription) has no tokenizer.json equivalent")
        }
        let core = try parts.build()

        // Vocabulary: every token, later duplicates winning as in the GGUF loader.
        var lastIdOfText: [String: Int] = [:]
        for (text, id) in parts.vocab { lastIdOfText[text] = id }
        var vocab: [(String, JSONText)] = []
        vocab.reserveCapacity(parts.vocab.count)
        for (text, id) in parts.vocab where lastIdOfText[text] == id { vocab.append((text, .int(id))) }
        let merges = parts.merges.map { JSONText.string($0.0 + " " + $0.1) }

        let added = parts.added.sorted { $0.id < $1.id }
        func text(_ id: Int) -> String? {
            if let a = added.first(where: { Int($0.id) == id }) { return String(decoding: a.content, as: UTF8.self) }
            return parts.vocab.first(where: { $0.id == id })?.text
        }

        // Post-processor: the ids the GGUF tokenizer puts around the text.
        let postProcessor = try templatePostProcessor(core: core, text: text, pairSpecialTypeId: 0, file: file)
            ?? .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                        ("trim_offsets", .bool(false)), ("use_regex", .bool(true))])
        let tokenizer: JSONText = .object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(added.map { addedTokenJSON($0, withId: true) })),
            ("normalizer", .null),
            ("pre_tokenizer", preJSON),
            ("post_processor", postProcessor),
            ("decoder", .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                 ("trim_offsets", .bool(true)), ("use_regex", .bool(true))])),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null),
                ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
                ("ignore_merges", .bool(parts.ignoreMerges)),
                ("vocab", .object(vocab)), ("merges", .array(merges)),
            ])),
        ])

        let config = tokenizerConfigJSON(core: core, added: added, text: text, chatTemplate: chatTemplate,
                                         modelMaxLength: modelMaxLength, addPrefixSpace: false, unknownToken: nil)
        return (tokenizer.serialized(), config.serialized())
    }

    /// An `added_tokens` entry of tokenizer.json (`withId`) or an `added_tokens_decoder` value of
    /// tokenizer_config.json.
    static func addedTokenJSON(_ t: AddedTokenSpec, withId: Bool) -> JSONText {
        var m: [(String, JSONText)] = []
        if withId { m.append(("id", .int(Int(t.id)))) }
        m += [("content", .string(String(decoding: t.content, as: UTF8.self))),
              ("single_word", .bool(t.singleWord)), ("lstrip", .bool(t.lstrip)), ("rstrip", .bool(t.rstrip)),
              ("normalized", .bool(t.normalized)), ("special", .bool(t.special))]
        return .object(m)
    }

    /// The `TemplateProcessing` post-processor that puts `core`'s prefix and suffix ids around the
    /// text, or nil when it adds none. `pairSpecialTypeId` is the type id of the second sequence's
    /// special tokens: transformers' Gemma converter writes 1, the byte-level converters 0.
    static func templatePostProcessor(core: TokenizerCore, text: (Int) -> String?, pairSpecialTypeId: Int,
                                      file: String) throws -> JSONText? {
        guard !core.prefixIds.isEmpty || !core.suffixIds.isEmpty else { return nil }
        var specials: [(String, JSONText)] = []
        func piece(_ id: Int, _ typeId: Int) throws -> JSONText {
            guard let t = text(id) else { throw FormatError(file: file, "token id \(id) added around the text has no text") }
            if !specials.contains(where: { $0.0 == t }) {
                specials.append((t, .object([("id", .string(t)), ("ids", .array([.int(id)])), ("tokens", .array([.string(t)]))])))
            }
            return .object([("SpecialToken", .object([("id", .string(t)), ("type_id", .int(typeId))]))])
        }
        func sequence(_ name: String, _ typeId: Int) -> JSONText {
            .object([("Sequence", .object([("id", .string(name)), ("type_id", .int(typeId))]))])
        }
        func around(_ name: String, _ typeId: Int, specialTypeId: Int) throws -> [JSONText] {
            try core.prefixIds.map { try piece($0, specialTypeId) } + [sequence(name, typeId)]
                + core.suffixIds.map { try piece($0, specialTypeId) }
        }
        let single = try around("A", 0, specialTypeId: 0)
        let pair = single + (try around("B", 1, specialTypeId: pairSpecialTypeId))
        return .object([("type", .string("TemplateProcessing")), ("single", .array(single)),
                        ("pair", .array(pair)), ("special_tokens", .object(specials))])
    }

    /// tokenizer_config.json for an exported tokenizer, members in the order transformers saves them.
    /// `addPrefixSpace` and `unknownToken` are written when given.
    static func tokenizerConfigJSON(core: TokenizerCore, added: [AddedTokenSpec], text: (Int) -> String?,
                                    chatTemplate: String?, modelMaxLength: Int?, addPrefixSpace: Bool?,
                                    unknownToken: String?) -> JSONText {
        var config: [(String, JSONText)] = [
            ("add_bos_token", .bool(core.bosTokenId.map { core.prefixIds == [$0] } ?? false)),
            ("add_eos_token", .bool(core.eosTokenId.map { core.suffixIds == [$0] } ?? false)),
        ]
        if let addPrefixSpace { config.append(("add_prefix_space", .bool(addPrefixSpace))) }
        config.append(("added_tokens_decoder", .object(added.map { (String($0.id), addedTokenJSON($0, withId: false)) })))
        if let t = core.bosTokenId.flatMap(text) { config.append(("bos_token", .string(t))) }
        if let template = chatTemplate { config.append(("chat_template", .string(template))) }
        config.append(("clean_up_tokenization_spaces", .bool(false)))
        if let t = core.eosTokenId.flatMap(text) { config.append(("eos_token", .string(t))) }
        config.append(("extra_special_tokens", .object([])))
        if let n = modelMaxLength { config.append(("model_max_length", .int(n))) }
        if let t = core.padTokenId.flatMap(text) { config.append(("pad_token", .string(t))) }
        config.append(("tokenizer_class", .string("PreTrainedTokenizerFast")))
        if let unknownToken { config.append(("unk_token", .string(unknownToken))) }
        return .object(config)
    }

    /// GGUF `tokenizer.ggml.*` metadata for a tokenizer.json (with its tokenizer_config.json),
    /// as llama.cpp's converter writes it: `gpt2` model, tokens in byte-level form (added
    /// tokens as their content), token types (3 control for special added tokens, 4
    /// user-defined for other added tokens, 5 unused for padding ids up to `vocabSize`),
    /// merges, BOS/EOS/padding ids, whether BOS/EOS are added, and the `pre` name.
    /// A byte-fallback tokenizer.json (Gemma, Llama 2, Mistral) becomes a SentencePiece vocabulary
    /// instead (`sentencePieceGGUFMetadata`); `architecture` is the GGUF's.
    public static func ggufMetadata(tokenizerJSON: Data, tokenizerConfigJSON: Data?, file: String,
                                    vocabSize: Int, architecture: String = "llama") throws -> [(String, GGUFValue)] {
        func fail(_ p: String) -> FormatError { FormatError(file: file, p) }
        let parts = try HuggingFaceTokenizerLoader(file: file).load(tokenizerJSON, tokenizerConfigJSON)
        if parts.sentencePiece != nil {
            return try sentencePieceGGUFMetadata(parts: parts, core: try parts.build(), file: file,
                                                 architecture: architecture, vocabSize: vocabSize)
        }
        guard let pre = preName(parts.preTokenizer) else {
            throw fail("this pre-tokenizer has no GGUF tokenizer.ggml.pre equivalent (gpt2, smollm, llama-bpe, qwen2)")
        }
        if parts.ignoreMerges != (pre == "llama-bpe") && parts.ignoreMerges {
            throw fail("ignore_merges is true with a \(pre) pre-tokenizer; GGUF readers only ignore merges for llama-bpe")
        }
        guard parts.unknownToken == nil || parts.fuseUnknown == false else {
            throw fail("fuse_unk has no GGUF equivalent")
        }
        let core = try parts.build()
        guard core.vocabSize <= vocabSize else {
            throw fail("the tokenizer has \(core.vocabSize) ids but the model's vocabulary is \(vocabSize)")
        }
        var tokens = [String?](repeating: nil, count: vocabSize)
        var types = [Int32](repeating: 1, count: vocabSize)
        for (text, id) in parts.vocab where tokens[id] == nil { tokens[id] = text }
        for a in parts.added {
            tokens[Int(a.id)] = String(decoding: a.content, as: UTF8.self)
            types[Int(a.id)] = a.special ? 3 : 4
        }
        for id in 0..<vocabSize where tokens[id] == nil {
            tokens[id] = "[PAD\(id)]"
            types[id] = 5
        }
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(elementType: 8, tokens.map { .string($0!) })),
            ("tokenizer.ggml.token_type", .array(elementType: 5, types.map { .i32($0) })),
            ("tokenizer.ggml.merges", .array(elementType: 8, parts.merges.map { .string($0.0 + " " + $0.1) })),
        ]
        if let id = core.bosTokenId { out.append(("tokenizer.ggml.bos_token_id", .u32(UInt32(id)))) }
        if let id = core.eosTokenId { out.append(("tokenizer.ggml.eos_token_id", .u32(UInt32(id)))) }
        if let id = core.padTokenId { out.append(("tokenizer.ggml.padding_token_id", .u32(UInt32(id)))) }
        if core.bpe.unknownId >= 0 { out.append(("tokenizer.ggml.unknown_token_id", .u32(UInt32(core.bpe.unknownId)))) }
        out += try ggufAddedSpecialTokens(core: core, file: file)
        return out
    }

    /// `add_bos_token` / `add_eos_token`: GGUF can say only that the BOS (EOS) id goes before (after)
    /// the text, so any other post-processor template is refused.
    static func ggufAddedSpecialTokens(core: TokenizerCore, file: String) throws -> [(String, GGUFValue)] {
        let addBOS = !core.prefixIds.isEmpty
        if addBOS {
            guard let bos = core.bosTokenId, core.prefixIds == [bos] else {
                throw FormatError(file: file, "the post-processor puts \(core.prefixIds) before the text; GGUF can only add the BOS token")
            }
        }
        let addEOS = !core.suffixIds.isEmpty
        if addEOS {
            guard let eos = core.eosTokenId, core.suffixIds == [eos] else {
                throw FormatError(file: file, "the post-processor puts \(core.suffixIds) after the text; GGUF can only add the EOS token")
            }
        }
        return [("tokenizer.ggml.add_bos_token", .bool(addBOS)), ("tokenizer.ggml.add_eos_token", .bool(addEOS))]
    }
}
