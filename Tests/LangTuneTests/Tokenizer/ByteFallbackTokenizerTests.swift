import Foundation
import XCTest
@testable import LangTune

/// A hand-made `tokenizer.json` of BPE with `byte_fallback`, in Gemma's form and in Llama 2's and
/// Mistral's (`Prepend`, `Metaspace`, `Strip`): merges ranked per pair of ids as `tokenizers` ranks
/// them, bytes the vocabulary lacks as `<0xXX>` tokens, where each form puts `▁`, transformers 5's
/// own rules for a `LlamaTokenizer` folder, and the text handling LangTune cannot reproduce refused
/// by name. Expected ids follow from the rules by hand. Real vocabularies are checked in
/// Gemma3TokenizerTests and, against transformers, in Tests/Interop (test_gemma3_hf.py,
/// test_sentencepiece_hf.py).
final class ByteFallbackTokenizerTests: XCTestCase {
    static let vocab: [(String, Int)] = [
        ("<unk>", 0), ("<0xE4>", 1), ("<0xB8>", 2), ("<0xAD>", 3), ("▁", 4), ("a", 5), ("b", 6), ("c", 7),
        ("ab", 8), ("bc", 9), ("abc", 10), ("▁a", 11), ("<bos>", 12), ("c▁", 13),
    ]

    static func json(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
        var root: [String: Any] = [
            "version": "1.0",
            "added_tokens": [["id": 12, "content": "<bos>", "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false, "special": true]],
            "normalizer": replace(" ", "▁"),
            "pre_tokenizer": ["type": "Split", "pattern": ["String": " "], "behavior": "MergedWithPrevious", "invert": false],
            "post_processor": ["type": "TemplateProcessing",
                               "single": [["SpecialToken": ["id": "<bos>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                               "special_tokens": ["<bos>": ["id": "<bos>", "ids": [12], "tokens": ["<bos>"]]]],
            "decoder": ["type": "Sequence", "decoders": [replace("▁", " "), ["type": "ByteFallback"], ["type": "Fuse"]]],
            "model": ["type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                      "vocab": Dictionary(uniqueKeysWithValues: vocab),
                      // "b c" outranks "a b", so "abc" is built as a + bc: ranks belong to pairs, not to merged tokens.
                      // "c ▁" ranks first: it joins two words, which Metaspace's `split` forbids.
                      "merges": [["c", "▁"], ["b", "c"], ["a", "b"], ["a", "bc"], ["▁", "a"], ["ab", "c"]]],
        ]
        edit(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    func testPairRanksByteFallbackAndDecoding() throws {
        let t = try Tokenizer(tokenizerJSON: Self.json(), tokenizerConfigJSON: nil, file: "t.json")
        XCTAssertEqual(t.encode("abc", addSpecialTokens: false), [10])
        XCTAssertEqual(t.encode("abc", addSpecialTokens: true), [12, 10])
        // "▁a" is listed, but "a b" merges first and leaves "▁" alone; 中 falls back to its three bytes.
        XCTAssertEqual(t.encode(" ab 中", addSpecialTokens: false), [4, 8, 4, 1, 2, 3])
        XCTAssertEqual(t.encode(" a", addSpecialTokens: false), [11])
        // A scalar with no byte tokens becomes the unknown token.
        XCTAssertEqual(t.encode("é", addSpecialTokens: false), [0])
        XCTAssertEqual(t.encode("<bos>ab", addSpecialTokens: false), [12, 8])
        XCTAssertEqual(t.decode([12, 8, 4, 1, 2, 3], skipSpecialTokens: true), "ab 中")
        XCTAssertEqual(t.decode([11, 9], skipSpecialTokens: false), " abc")
        XCTAssertEqual(t.bosTokenId, 12)
    }

    static func replace(_ a: String, _ b: String) -> [String: Any] { ["type": "Replace", "pattern": ["String": a], "content": b] }
    static var stripDecoder: [String: Any] {
        ["type": "Sequence", "decoders": [
            replace("▁", " "), ["type": "ByteFallback"], ["type": "Fuse"], ["type": "Strip", "content": " ", "start": 1, "stop": 0]]]
    }

    /// Llama 2's and Mistral's forms: a `Metaspace` pre-tokenizer (transformers 4.4x and 5) or a
    /// `Prepend` normalizer (the Hub's first files), with the decoder's `Strip`.
    static func llamaJSON(_ pre: [String: Any]?, prepend: Bool = false) throws -> Data {
        try json { root in
            root["normalizer"] = prepend ? ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "▁"], replace(" ", "▁")]] as [String: Any] : NSNull()
            root["pre_tokenizer"] = pre ?? NSNull()
            root["decoder"] = stripDecoder
        }
    }

    func testWhereEachFormPutsTheSpace() throws {
        func tok(_ data: Data, config: [String: Any]? = nil) throws -> Tokenizer {
            try Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: config.map { try JSONSerialization.data(withJSONObject: $0) },
                          file: "t.json")
        }
        func metaspace(_ scheme: String, split: Bool = false) -> [String: Any] {
            ["type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split]
        }
        // Metaspace "first": only the segment that starts the input, and not when it starts with a space.
        let first = try tok(Self.llamaJSON(metaspace("first")))
        XCTAssertEqual(first.encode("a"), [11])
        XCTAssertEqual(first.encode(" a"), [11])
        XCTAssertEqual(first.encode("<bos>a"), [12, 5])
        // "a b" outranks "▁ a": ▁ + ab.
        XCTAssertEqual(first.encode("ab"), [4, 8])
        // Without `split`, "c ▁" (rank 0) merges across the space: ▁ c▁ a.
        XCTAssertEqual(first.encode("c a"), [4, 13, 5])
        // "always": every segment not starting with a space.
        let always = try tok(Self.llamaJSON(metaspace("always")))
        XCTAssertEqual(always.encode("<bos>a"), [12, 11])
        XCTAssertEqual(always.encode("<bos> a"), [12, 11])
        XCTAssertEqual(try tok(Self.llamaJSON(metaspace("never"))).encode("a"), [5])
        // `split`: each `▁` starts a word, so "c ▁" cannot merge: ▁c is ▁ + c, then ▁a.
        XCTAssertEqual(try tok(Self.llamaJSON(metaspace("first", split: true))).encode("c a"), [4, 7, 11])
        // Before `prepend_scheme`: add_prefix_space (true: always) and split (default true).
        let old = try tok(Self.llamaJSON(["type": "Metaspace", "replacement": "▁", "add_prefix_space": true]))
        XCTAssertEqual(old.encode("<bos>c a"), [12, 4, 7, 11])
        // `Prepend`: every segment, even one starting with a space.
        let prepend = try tok(Self.llamaJSON(nil, prepend: true))
        XCTAssertEqual(prepend.encode(" a"), [4, 11])
        XCTAssertEqual(prepend.encode("<bos>a"), [12, 11])
        XCTAssertEqual(prepend.encode("c a"), [4, 13, 5])

        // transformers 5 runs its own rules for a LlamaTokenizer folder, whatever the file says.
        let gemmaForm = try Self.json()
        XCTAssertEqual(try tok(gemmaForm).encode("a"), [5])
        let llama = try tok(gemmaForm, config: ["tokenizer_class": "LlamaTokenizer"])
        XCTAssertEqual(llama.encode("a"), [11])
        XCTAssertEqual(llama.encode("<bos>a"), [12, 5])
        XCTAssertEqual(llama.decode([11]), "a")
        let legacy = try tok(Self.llamaJSON(nil, prepend: true), config: ["tokenizer_class": "LlamaTokenizerFast", "legacy": true])
        XCTAssertEqual(legacy.encode("<bos>a"), [12, 11])
        XCTAssertEqual(legacy.encode(" a"), [11])
        let noPrefix = try tok(Self.llamaJSON(metaspace("first")), config: ["tokenizer_class": "LlamaTokenizer", "add_prefix_space": false])
        XCTAssertEqual(noPrefix.encode("a"), [5])
        XCTAssertEqual(noPrefix.decode([11]), " a")
    }

    func testStripDropsOneLeadingSpace() throws {
        let t = try Tokenizer(tokenizerJSON: Self.llamaJSON(["type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false]),
                              tokenizerConfigJSON: nil, file: "t.json")
        // `Strip` runs after `Fuse`: one space off the start of the whole text, none elsewhere.
        XCTAssertEqual(t.decode([11, 11]), "a a")
        XCTAssertEqual(t.decode([4, 4, 5]), " a")
        XCTAssertEqual(t.decode([12, 11]), "<bos> a")
        XCTAssertEqual(t.decode([12, 11], skipSpecialTokens: true), "a")
        var stream = t.streamingDecoder(skipSpecialTokens: true)
        XCTAssertEqual(stream.feed(12), "")
        XCTAssertEqual(stream.feed(4), "")
        XCTAssertEqual(stream.feed(11), " a")
        XCTAssertEqual(stream.finish(), "")
        // Generated text drops it the same way.
        var assembler = TextAssembler(stopStrings: [], dropLeadingSpace: true)
        XCTAssertEqual(assembler.append(t.tokenBytes(11)).text, "a")
        XCTAssertEqual(assembler.append(t.tokenBytes(11)).text, " a")
        // Gemma's form keeps it.
        let gemma = try Tokenizer(tokenizerJSON: Self.json(), tokenizerConfigJSON: nil, file: "t.json")
        XCTAssertEqual(gemma.decode([11]), " a")
    }

    func testRefusals() throws {
        func message(_ data: Data) -> String {
            do { _ = try Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: nil, file: "t.json"); return "(loaded)" }
            catch let e as FormatError { return e.description } catch { return "untyped: \(error)" }
        }
        let supported = #"(supported with byte_fallback BPE: normalizer Replace " " → "▁" (Gemma) or Prepend "▁" + Replace (Llama 2, Mistral), or a Metaspace pre-tokenizer; decoder Replace/ByteFallback/Fuse with or without Strip)"#
        XCTAssertEqual(message(try Self.json { $0["normalizer"] = ["type": "Sequence", "normalizers": [
            ["type": "Prepend", "prepend": "_"], ["type": "Replace", "pattern": ["String": " "], "content": "▁"]]] }),
                       "t.json: normalizer Sequence is not supported \(supported)")
        XCTAssertEqual(message(try Self.json { $0["normalizer"] = ["type": "NFKC"] }),
                       "t.json: normalizer NFKC is not supported \(supported)")
        XCTAssertEqual(message(try Self.json { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }),
                       "t.json: pre-tokenizer Metaspace is not supported \(supported)")
        XCTAssertEqual(message(try Self.llamaJSON(nil)),
                       "t.json: pre-tokenizer null with no normalizer is not supported \(supported)")
        XCTAssertEqual(message(try Self.llamaJSON(["type": "Metaspace", "replacement": "_", "prepend_scheme": "first"])),
                       #"t.json: Metaspace replacement "_" is not supported (only "▁")"#)
        XCTAssertEqual(message(try Self.llamaJSON(["type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"])),
                       #"t.json: Metaspace prepend_scheme "sometimes" is not one of first, always, never"#)
        XCTAssertEqual(message(try Self.json { $0["decoder"] = ["type": "Sequence", "decoders": [
            Self.replace("▁", " "), ["type": "ByteFallback"], ["type": "Fuse"], ["type": "Strip", "content": " ", "start": 2, "stop": 0]]] }),
                       "t.json: decoder step Strip is not supported (only Strip of one leading space)")
        XCTAssertEqual(message(try Self.json { $0["decoder"] = ["type": "Metaspace", "replacement": "▁"] }),
                       "t.json: decoder Metaspace is not supported \(supported)")
        XCTAssertEqual(message(try Self.json { root in
            var model = root["model"] as? [String: Any] ?? [:]
            model["merges"] = [["a", "z"]]
            root["model"] = model
        }), #"t.json: merge 0 "a z": "z" is not in the vocabulary"#)
        XCTAssertEqual(message(try Self.json { root in
            var model = root["model"] as? [String: Any] ?? [:]
            model["ignore_merges"] = true
            root["model"] = model
        }), "t.json: ignore_merges with byte_fallback BPE is not supported")
    }
}
