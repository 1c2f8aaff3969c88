import Foundation

/// A BPE tokenizer that gives the ids Hugging Face `tokenizers` gives: byte-level
/// (GPT-2, Llama 3, Qwen2 and SmolLM pre-tokenization; from tokenizer.json or GGUF metadata)
/// or SentencePiece-style with byte fallback (Gemma, Llama 2, Mistral; from tokenizer.json or GGUF metadata).
///
/// Immutable after loading and safe to share between threads; a bounded cache of
/// encoded words makes repeated words cheap.
public final class Tokenizer: Sendable {
    let core: TokenizerCore
    private let workspace = EncodeWorkspace()

    init(core: TokenizerCore) {
        self.core = core
    }

    /// Loads whichever description `source` holds.
    public convenience init(source: TokenizerSource) throws {
        switch source {
        case .huggingFace(let json, let config, let file):
            try self.init(tokenizerJSON: json, tokenizerConfigJSON: config, file: file)
        case .gguf(let metadata, let file):
            try self.init(ggufMetadata: metadata, file: file)
        }
    }

    /// Number of ids: one past the highest id of the vocabulary and the added tokens.
    public var vocabSize: Int { core.vocabSize }
    /// Beginning-of-sequence id (tokenizer_config `bos_token`, GGUF `bos_token_id`, or the token a TemplateProcessing puts first).
    public var bosTokenId: Int? { core.bosTokenId }
    /// End-of-sequence id (tokenizer_config `eos_token`, GGUF `eos_token_id`).
    public var eosTokenId: Int? { core.eosTokenId }
    /// Padding id (tokenizer_config `pad_token`, GGUF `padding_token_id`), if the model names one.
    public var padTokenId: Int? { core.padTokenId }
    /// The BOS token's text (e.g. `<|begin_of_text|>`), for chat templates.
    public var bosToken: String? { core.bosToken }
    /// The EOS token's text (e.g. `<|im_end|>`), for chat templates.
    public var eosToken: String? { core.eosToken }
    /// Ids `encode(_:addSpecialTokens: true)` puts before and after the text.
    public var specialPrefixIds: [Int] { core.prefixIds }
    public var specialSuffixIds: [Int] { core.suffixIds }

    /// The id of a token given as its literal vocabulary string (added tokens first,
    /// as `tokenizers`' `token_to_id`): `"<|im_end|>"`, `"Ġthe"`.
    public func id(forToken token: String) -> Int? {
        let utf8 = Array(token.utf8)
        let added = core.addedByContent.get(utf8)
        if added >= 0 { return Int(added) }
        if let bytes = ByteLevelAlphabet.bytes(of: token) {
            let id = core.bpe.vocab.get(bytes)
            if id >= 0 { return Int(id) }
        }
        let other = core.unmappedVocab.get(utf8)
        return other >= 0 ? Int(other) : nil
    }

    /// The bytes an id decodes to (empty for an unknown id).
    public func tokenBytes(_ id: Int) -> [UInt8] {
        var out: [UInt8] = []
        appendTokenBytes(id, to: &out)
        return out
    }

    /// True for special added tokens (those `decode(skipSpecialTokens: true)` drops).
    public func isSpecial(_ id: Int) -> Bool {
        id >= 0 && id < core.special.count && core.special[id]
    }

    func appendTokenBytes(_ id: Int, to out: inout [UInt8]) {
        guard id >= 0, id < core.vocabSize else { return }
        let s = Int(core.tokenOffsets[id]), e = Int(core.tokenOffsets[id + 1])
        if s < e { out.append(contentsOf: core.tokenText[s..<e]) }
    }

    /// Ids for `text`. Added tokens written in the text (`<|im_start|>`) are matched as
    /// those tokens; with `addSpecialTokens`, the post-processor's ids (BOS) are added.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        if addSpecialTokens { ids.append(contentsOf: core.prefixIds) }
        var text = text
        text.withUTF8 { buffer in
            if workspace.lock.try() {
                defer { workspace.lock.unlock() }
                encodeBytes(buffer, cache: workspace.cache, state: &workspace.state, into: &ids)
            } else {
                var state = EncodeState()
                encodeBytes(buffer, cache: nil, state: &state, into: &ids)
            }
        }
        if addSpecialTokens { ids.append(contentsOf: core.suffixIds) }
        return ids
    }

    /// Text for `ids`: token bytes joined, ill-formed UTF-8 replaced by U+FFFD. Unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            if skipSpecialTokens && isSpecial(id) { continue }
            appendTokenBytes(id, to: &bytes)
        }
        if core.stripLeadingSpace, bytes.first == 0x20 { bytes.removeFirst() }
        return UTF8Repair.string(from: bytes)
    }

    /// A decoder for generated ids arriving one by one.
    public func streamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }

    // MARK: Encoding

    private func encodeBytes(_ buffer: UnsafeBufferPointer<UInt8>, cache: WordCache?, state: inout EncodeState,
                             into ids: inout [Int]) {
        guard buffer.count > 0 else { return }
        // Added tokens: first those matched in the raw text, then (with no normalizer, on
        // the same text) the "normalized" ones within what is left.
        state.segments.removeAll(keepingCapacity: true)
        if core.rawAdded.isEmpty {
            state.segments.append(InputSegment(id: -1, start: 0, end: buffer.count))
        } else {
            core.rawAdded.split(buffer, 0..<buffer.count, into: &state.segments)
        }
        if !core.normalizedAdded.isEmpty {
            state.moreSegments.removeAll(keepingCapacity: true)
            for segment in state.segments {
                if segment.id >= 0 {
                    state.moreSegments.append(segment)
                } else {
                    core.normalizedAdded.split(buffer, segment.start..<segment.end, into: &state.moreSegments)
                }
            }
            swap(&state.segments, &state.moreSegments)
        }
        for segment in state.segments {
            if segment.id >= 0 {
                ids.append(Int(segment.id))
            } else if core.preTokenizer.addPrefixSpace && buffer[segment.start] != 0x20 {
                var spaced: [UInt8] = [0x20]
                spaced.append(contentsOf: buffer[segment.start..<segment.end])
                spaced.withUnsafeBufferPointer { encodeText($0, 0..<$0.count, cache: cache, state: &state, into: &ids) }
            } else {
                encodeText(buffer, segment.start..<segment.end, cache: cache, state: &state, into: &ids)
            }
        }
    }

    private func encodeText(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, cache: WordCache?,
                            state: inout EncodeState, into ids: inout [Int]) {
        guard let base = buffer.baseAddress else { return }
        if let spm = core.sentencePiece {
            // No pre-tokenization: the text between added tokens is one piece to merge.
            spm.encode(base + range.lowerBound, range.count, atStart: range.lowerBound == 0, scratch: &state.sentencePiece,
                       into: &ids)
            return
        }
        core.preTokenizer.split(buffer, range, scratch: &state.pre)
        var start = range.lowerBound
        for end in state.pre.ends {
            let p = base + start
            let n = end - start
            start = end
            guard n > 0 else { continue }
            if let cache {
                let h = ByteHashing.hash(p, n)
                if cache.lookup(p, n, hash: h, into: &ids) { continue }
                let before = ids.count
                core.bpe.encodeWord(p, n, scratch: &state.bpe, into: &ids)
                cache.insert(p, n, hash: h, ids: ids[before...])
            } else {
                core.bpe.encodeWord(p, n, scratch: &state.bpe, into: &ids)
            }
        }
    }
}

/// Everything a loaded tokenizer holds.
struct TokenizerCore: Sendable {
    var bpe: BPEModel
    /// SentencePiece-style merging (GGUF `llama` vocabularies), used instead of `bpe` when set.
    var sentencePiece: SentencePieceBPE?
    var preTokenizer: PreTokenizer
    /// Added tokens matched against the raw text (`normalized: false`).
    var rawAdded: AddedTokenMatcher
    /// Added tokens with `normalized: true` (matched afterwards; there is no normalizer).
    var normalizedAdded: AddedTokenMatcher
    var addedByContent: ByteStringTable
    /// Vocabulary strings outside the byte-level alphabet, by their UTF-8 bytes.
    var unmappedVocab: ByteStringTable
    var prefixIds: [Int]
    var suffixIds: [Int]
    var vocabSize: Int
    /// Decoded bytes of every id: `tokenText[tokenOffsets[id]..<tokenOffsets[id + 1]]`.
    var tokenText: [UInt8]
    var tokenOffsets: [Int32]
    var special: [Bool]
    var bosTokenId: Int?
    var eosTokenId: Int?
    var padTokenId: Int?
    var bosToken: String?
    var eosToken: String?
    /// Decoding drops a space that starts the text (Llama 2 / Mistral `tokenizer.json` `Strip` decoder).
    var stripLeadingSpace = false
}
