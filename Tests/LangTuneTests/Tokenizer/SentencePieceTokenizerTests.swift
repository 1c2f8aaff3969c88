import Foundation
import XCTest
@testable import LangTune

/// SentencePiece-style GGUF vocabularies on a hand-made vocabulary where the expected ids follow
/// from the rules alone: merges by score (Llama 2 / Mistral) or by file order (Gemma), the `▁`
/// prefix, byte fallback, bytes-not-`Character` keys, and clear refusals.
final class SentencePieceTokenizerTests: XCTestCase {
    /// 0 <unk>, 1 <s>, 2 </s>, 3...258 <0x00>...<0xFF>, then pieces. "ab" comes before "bc" in the
    /// file but scores lower, so score order and file order disagree on "abc".
    private func metadata(architecture: String = "llama") -> [String: GGUFValue] {
        var tokens: [String] = ["<unk>", "<s>", "</s>"] + (0..<256).map { String(format: "<0x%02X>", $0) }
        var types: [Int32] = [2, 3, 3] + [Int32](repeating: 6, count: 256)
        var scores: [Float] = [0, 0, 0] + [Float](repeating: 0, count: 256)
        for (piece, score) in [("▁", -1), ("a", -2), ("b", -3), ("c", -4), ("ab", -10), ("bc", -5), ("▁a", -1), ("\u{E9}", -7)] as [(String, Float)] {
            tokens.append(piece); types.append(1); scores.append(score)
        }
        tokens.append("  "); types.append(4); scores.append(-1000)  // Gemma-style run of spaces, id 267
        return [
            "general.architecture": .string(architecture),
            "tokenizer.ggml.model": .string("llama"),
            "tokenizer.ggml.tokens": .array(elementType: 8, tokens.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(elementType: 5, types.map { .i32($0) }),
            "tokenizer.ggml.scores": .array(elementType: 6, scores.map { .f32($0) }),
            "tokenizer.ggml.bos_token_id": .u32(1),
            "tokenizer.ggml.eos_token_id": .u32(2),
            "tokenizer.ggml.unknown_token_id": .u32(0),
        ]
    }

    func testScoresDecideAndSpacesArePrefixed() throws {
        let t = try Tokenizer(ggufMetadata: metadata(), file: "spm.gguf")
        // "▁abc▁abc": ▁a (score -1) first, then b+c (-5) beats a+b (-10).
        XCTAssertEqual(t.encode("abc abc"), [265, 264, 265, 264])
        XCTAssertEqual(t.encode("abc", addSpecialTokens: true), [1, 265, 264])
        // Text already starting with a space gets no second `▁` (transformers' Metaspace, prepend_scheme "first").
        XCTAssertEqual(t.encode(" abc"), [265, 264])
        XCTAssertEqual(t.decode([1, 265, 264, 2]), "<s> abc</s>")
        // transformers builds a LlamaTokenizer for this vocabulary, whose decoder strips the leading space
        // (checked on a real vocabulary in Tests/Interop/test_sentencepiece_hf.py).
        XCTAssertEqual(t.decode([1, 265, 264, 2], skipSpecialTokens: true), "abc")
        XCTAssertEqual(t.id(forToken: "▁a"), 265)
        XCTAssertEqual(t.tokenBytes(265), Array(" a".utf8))
        XCTAssertEqual(t.vocabSize, 268)
        XCTAssertEqual(t.bosToken, "<s>")
    }

    func testByteFallbackKeysByBytes() throws {
        let t = try Tokenizer(ggufMetadata: metadata(), file: "spm.gguf")
        // "ç" is not a piece: its two UTF-8 bytes; "é" precomposed is one, its decomposed spelling is not.
        XCTAssertEqual(t.encode("\u{E7}"), [259, 3 + 0xC3, 3 + 0xA7])
        XCTAssertEqual(t.encode("\u{E9}"), [259, 266])
        XCTAssertEqual(t.encode("e\u{301}"), [259, 3 + 0x65, 3 + 0xCC, 3 + 0x81])
        XCTAssertEqual(t.decode([3 + 0xC3, 3 + 0xA7]), "\u{E7}")
        XCTAssertEqual(Array(t.decode([3 + 0xC3]).unicodeScalars), ["\u{FFFD}"])
    }

    func testGemmaMergesInFileOrderAndRespellsSpaceRuns() throws {
        let t = try Tokenizer(ggufMetadata: metadata(architecture: "gemma3"), file: "gemma.gguf")
        // File order: "ab" (263) before "bc" (264); no `▁` prefix for Gemma.
        XCTAssertEqual(t.encode("abc"), [263, 262])
        // The run of two spaces is a piece spelled `▁▁`, reached by merging, not an added token:
        // "▁a" (265) merges before "▁▁" (267).
        XCTAssertEqual(t.encode("a  "), [260, 267])
        XCTAssertEqual(t.encode("a  a"), [260, 259, 265])
        XCTAssertEqual(t.decode([260, 267]), "a  ")
        XCTAssertFalse(t.isSpecial(267))
    }

    /// A Llama-style vocabulary written as tokenizer.json (Metaspace "first", merges in score order,
    /// `Strip`) reads back with the GGUF tokenizer's ids and text; on the real Mistral vocabulary,
    /// transformers loads it (Tests/Interop/test_sentencepiece_hf.py).
    func testLlamaVocabularyExportsToTokenizerJSON() throws {
        let m = metadata()
        let gguf = try Tokenizer(ggufMetadata: m, file: "spm.gguf")
        let files = try TokenizerExport.huggingFaceFiles(ggufMetadata: m, file: "spm.gguf", chatTemplate: nil, modelMaxLength: nil)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(files.tokenizerJSON)) as? [String: Any])
        XCTAssertEqual((json["pre_tokenizer"] as? [String: Any])?["prepend_scheme"] as? String, "first")
        // Score order: "bc" (-5) before "ab" (-10), though "ab" comes first in the file.
        let merges = try XCTUnwrap((json["model"] as? [String: Any])?["merges"] as? [[String]])
        XCTAssertLessThan(try XCTUnwrap(merges.firstIndex(of: ["b", "c"])), try XCTUnwrap(merges.firstIndex(of: ["a", "b"])))
        let hf = try Tokenizer(tokenizerJSON: Data(files.tokenizerJSON), tokenizerConfigJSON: Data(files.tokenizerConfigJSON), file: "t.json")
        for text in ["abc abc", " abc", "<s>abc</s> abc", "\u{E7}a", "  a"] {
            XCTAssertEqual(hf.encode(text, addSpecialTokens: true), gguf.encode(text, addSpecialTokens: true), text)
        }
        XCTAssertEqual(hf.decode([1, 265, 264, 2], skipSpecialTokens: true), "abc")
        XCTAssertEqual(hf.decode([1, 265, 264, 2]), gguf.decode([1, 265, 264, 2]))
    }

    func testAddSpacePrefixFollowsMetadata() throws {
        var m = metadata()
        m["tokenizer.ggml.add_space_prefix"] = .bool(false)
        m["tokenizer.ggml.add_bos_token"] = .bool(false)
        let t = try Tokenizer(ggufMetadata: m, file: "spm.gguf")
        XCTAssertEqual(t.encode("abc", addSpecialTokens: true), [260, 264])
    }

    func testRefusals() {
        func message(_ body: () throws -> Tokenizer) -> String {
            do { _ = try body(); return "(loaded)" } catch let e as FormatError { return e.description } catch { return "untyped: \(error)" }
        }
        var short = metadata()
        short["tokenizer.ggml.scores"] = .array(elementType: 6, [.f32(0)])
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: short, file: "m.gguf") },
                       "m.gguf: tokenizer.ggml.scores has 1 entries for 268 tokens")
        var badUnk = metadata()
        badUnk["tokenizer.ggml.unknown_token_id"] = .u32(5000)
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: badUnk, file: "m.gguf") },
                       "m.gguf: tokenizer.ggml.unknown_token_id 5000 is out of range")
    }
}
