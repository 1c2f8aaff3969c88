import Foundation
import XCTest
@testable import LangTune

/// Added-token matching (lstrip, rstrip, single_word, normalized second pass), a TemplateProcessing
/// BOS, and BPE merging on a tiny byte-level tokenizer. Expected ids from `tokenizers` 0.23.3
/// `Tokenizer.from_str` of the same JSON.
final class AddedTokenTests: XCTestCase {
    static func tinyTokenizerJSON() throws -> Data {
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[ByteLevelAlphabet.string(of: [UInt8(b)])] = b }
        let merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["Ġ", "Ġ"], ["ĠĠ", "ĠĠ"], ["a", "b"], ["ab", "ab"]]
        var next = 256
        for m in merges where vocab[m[0] + m[1]] == nil {
            vocab[m[0] + m[1]] = next
            next += 1
        }
        func added(_ id: Int, _ content: String, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
                   normalized: Bool, special: Bool) -> [String: Any] {
            ["id": id, "content": content, "single_word": singleWord, "lstrip": lstrip, "rstrip": rstrip,
             "normalized": normalized, "special": special]
        }
        let json: [String: Any] = [
            "version": "1.0",
            "added_tokens": [
                added(263, "<mask>", lstrip: true, rstrip: true, normalized: false, special: true),
                added(264, "[SW]", singleWord: true, normalized: false, special: true),
                added(265, "<r>", rstrip: true, normalized: true, special: false),
                added(266, "<s>", normalized: false, special: true),
                added(267, "<s>x", normalized: true, special: false),
            ],
            "normalizer": NSNull(),
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "post_processor": [
                "type": "TemplateProcessing",
                "single": [["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                "pair": [["Sequence": ["id": "A", "type_id": 0]]],
                "special_tokens": ["<s>": ["id": "<s>", "ids": [266], "tokens": ["<s>"]]],
            ],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "fuse_unk": false, "byte_fallback": false,
                      "ignore_merges": false, "vocab": vocab, "merges": merges],
        ]
        return try JSONSerialization.data(withJSONObject: json)
    }

    func testAddedTokenRulesMatchReference() throws {
        let t = try Tokenizer(tokenizerJSON: Self.tinyTokenizerJSON(), tokenizerConfigJSON: nil, file: "tiny.json")
        let expected: [(String, [Int])] = [
            ("the cat <mask> the", [116, 257, 32, 99, 97, 116, 263, 116, 257]),
            ("a  <mask>  b", [97, 263, 98]),
            ("x<mask>y", [120, 263, 121]),
            ("[SW] a[SW] [SW]b [SW]", [264, 32, 97, 91, 83, 87, 93, 32, 91, 83, 87, 93, 98, 32, 264]),
            ("\u{E9}[SW]", [195, 169, 91, 83, 87, 93]),
            ("<r>   z", [265, 122]),
            ("<s>x <s>y", [266, 120, 32, 266, 121]),
            ("the<s>", [116, 257, 266]),
            ("abababab", [262, 262]),
            ("    \t", [260, 9]),
            ("<mask><mask>", [263, 263]),
            (" <mask>\u{2000}x", [263, 120]),
            ("_[SW]_ ,[SW],", [95, 91, 83, 87, 93, 95, 32, 44, 264, 44]),
            ("ab<s>xab", [261, 266, 120, 261]),
        ]
        for (text, ids) in expected {
            XCTAssertEqual(t.encode(text), ids, text.debugDescription)
            XCTAssertEqual(t.encode(text, addSpecialTokens: true), [266] + ids, text.debugDescription)
        }
        XCTAssertEqual(t.bosTokenId, 266)
        XCTAssertEqual(t.bosToken, "<s>")
        XCTAssertEqual(t.decode([266, 97, 263, 98]), "<s>a<mask>b")
        XCTAssertEqual(t.decode([263, 265, 100], skipSpecialTokens: true), "<r>d")
        XCTAssertTrue(t.isSpecial(263))
        XCTAssertFalse(t.isSpecial(265))
    }

    /// The heap merge (long words) and the linear merge agree on words long enough to take either path.
    func testHeapAndLinearMergesAgree() throws {
        let t = try TokenizerFixtures.llama3()
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcdeilnorst".utf8)
        var scratch = BPEModel.Scratch()
        for length in [2, 3, 7, 40, 97, 200, 500] {
            for _ in 0..<20 {
                let word = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                scratch.symbols = word.map { t.core.bpe.byteIds[Int($0)] }
                t.core.bpe.mergeLinear(&scratch)
                let linear = scratch.symbols
                scratch.symbols = word.map { t.core.bpe.byteIds[Int($0)] }
                t.core.bpe.mergeWithHeap(&scratch)
                XCTAssertEqual(linear, scratch.symbols, String(decoding: word, as: UTF8.self))
                XCTAssertEqual(linear.flatMap { t.tokenBytes(Int($0)) }, word)
            }
        }
    }
}
