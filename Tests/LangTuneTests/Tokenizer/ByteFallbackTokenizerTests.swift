import Foundation
import XCTest
@testable import LangTune

/// A hand-made `tokenizer.json` in Gemma's form (BPE with `byte_fallback`): merges ranked per pair
/// of ids as `tokenizers` ranks them, bytes the vocabulary lacks as `<0xXX>` tokens, and the
/// text handling LangTune cannot reproduce refused by name. The real vocabulary is checked in
/// Gemma3TokenizerTests and, against transformers, in Tests/Interop.
final class ByteFallbackTokenizerTests: XCTestCase {
    static let vocab: [(String, Int)] = [
        ("<unk>", 0), ("<0xE4>", 1), ("<0xB8>", 2), ("<0xAD>", 3), ("▁", 4), ("a", 5), ("b", 6), ("c", 7),
        ("ab", 8), ("bc", 9), ("abc", 10), ("▁a", 11), ("<bos>", 12),
    ]

    static func json(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
        func replace(_ a: String, _ b: String) -> [String: Any] { ["type": "Replace", "pattern": ["String": a], "content": b] }
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
                      "merges": [["b", "c"], ["a", "b"], ["a", "bc"], ["▁", "a"], ["ab", "c"]]],
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

    func testRefusals() throws {
        func message(_ data: Data) -> String {
            do { _ = try Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: nil, file: "t.json"); return "(loaded)" }
            catch let e as FormatError { return e.description } catch { return "untyped: \(error)" }
        }
        let supported = #"(supported with byte_fallback BPE: Gemma's normalizer Replace " " → "▁", decoder Replace/ByteFallback/Fuse)"#
        XCTAssertEqual(message(try Self.json { $0["normalizer"] = ["type": "Sequence", "normalizers": [
            ["type": "Prepend", "prepend": "▁"], ["type": "Replace", "pattern": ["String": " "], "content": "▁"]]] }),
                       "t.json: normalizer Sequence is not supported \(supported)")
        XCTAssertEqual(message(try Self.json { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }),
                       "t.json: pre-tokenizer Metaspace is not supported \(supported)")
        XCTAssertEqual(message(try Self.json { $0["decoder"] = ["type": "Sequence", "decoders": [
            ["type": "Replace", "pattern": ["String": "▁"], "content": " "], ["type": "ByteFallback"], ["type": "Fuse"],
            ["type": "Strip", "content": " ", "start": 1, "stop": 0]]] }),
                       "t.json: decoder Sequence is not supported \(supported)")
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
