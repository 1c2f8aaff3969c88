import Foundation
import XCTest
@testable import LangTune

/// Refusals: what the tokenizer cannot reproduce exactly is a typed error naming the file and the problem.
final class TokenizerLoadingTests: XCTestCase {
    private func message(_ body: () throws -> Tokenizer) -> String {
        do {
            _ = try body()
            return "(loaded)"
        } catch let error as FormatError {
            return error.description
        } catch {
            return "untyped: \(error)"
        }
    }

    private func ggufMetadata(model: String = "gpt2", pre: String? = "smollm") -> [String: GGUFValue] {
        let tokens = (0..<256).map { GGUFValue.string(ByteLevelAlphabet.string(of: [UInt8($0)])) } + [.string("ab"), .string("<|eot|>")]
        var m: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string(model),
            "tokenizer.ggml.tokens": .array(elementType: 8, tokens),
            "tokenizer.ggml.token_type": .array(elementType: 5, [GGUFValue](repeating: .i32(1), count: 257) + [.i32(3)]),
            "tokenizer.ggml.merges": .array(elementType: 8, [.string("a b")]),
            "tokenizer.ggml.bos_token_id": .u32(257),
            "tokenizer.ggml.eos_token_id": .u32(257),
        ]
        if let pre { m["tokenizer.ggml.pre"] = .string(pre) }
        return m
    }

    func testGGUFSyntheticLoads() throws {
        let t = try Tokenizer(ggufMetadata: ggufMetadata(), file: "x.gguf")
        XCTAssertEqual(t.encode("ab<|eot|>a1"), [256, 257, 97, 49])
        XCTAssertEqual(t.vocabSize, 258)
        XCTAssertEqual(t.eosToken, "<|eot|>")
        XCTAssertEqual(t.specialPrefixIds, [])
        var withBOS = ggufMetadata(pre: "llama-bpe")
        withBOS["tokenizer.ggml.add_bos_token"] = .bool(true)
        XCTAssertEqual(try Tokenizer(ggufMetadata: withBOS, file: "x.gguf").encode("ab", addSpecialTokens: true), [257, 256])
    }

    func testGGUFRefusals() {
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: ggufMetadata(model: "t5"), file: "m.gguf") },
                       "m.gguf: tokenizer.ggml.model \"t5\" is not supported (gpt2: byte-level BPE, llama: SentencePiece BPE)")
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: ggufMetadata(model: "llama"), file: "m.gguf") },
                       "m.gguf: tokenizer.ggml.scores is missing (a SentencePiece vocabulary merges by score)")
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: ggufMetadata(pre: "deepseek-coder"), file: "m.gguf") },
                       "m.gguf: tokenizer.ggml.pre \"deepseek-coder\" is not supported (gpt2, smollm, llama-bpe, qwen2)")
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: ggufMetadata(pre: nil), file: "m.gguf") },
                       "m.gguf: tokenizer.ggml.pre is missing, so the pre-tokenizer is unknown")
        var badMerge = ggufMetadata()
        badMerge["tokenizer.ggml.merges"] = .array(elementType: 8, [.string("a zz")])
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: badMerge, file: "m.gguf") },
                       "m.gguf: merge 0 \"a zz\": \"zz\" is not in the vocabulary")
        var badTypes = ggufMetadata()
        badTypes["tokenizer.ggml.token_type"] = .array(elementType: 5, [.i32(1)])
        XCTAssertTrue(message { try Tokenizer(ggufMetadata: badTypes, file: "m.gguf") }.hasPrefix("m.gguf: tokenizer.ggml.token_type has 1 entries"))
        var badBOS = ggufMetadata()
        badBOS["tokenizer.ggml.bos_token_id"] = .u32(99_999)
        XCTAssertEqual(message { try Tokenizer(ggufMetadata: badBOS, file: "m.gguf") }, "m.gguf: BOS token id 99999 is out of range")
    }

    private func tinyJSON(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        let data = try AddedTokenTests.tinyTokenizerJSON()
        var json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        edit(&json)
        return try JSONSerialization.data(withJSONObject: json)
    }

    func testHuggingFaceRefusals() throws {
        let unknownPattern = try tinyJSON {
            $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": "\\w+|\\s+"], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]]
        }
        XCTAssertEqual(message { try Tokenizer(tokenizerJSON: unknownPattern, tokenizerConfigJSON: nil, file: "t.json") },
                       #"t.json: Split pre-tokenizer pattern "\\w+|\\s+" is not one of the supported (GPT-2, Llama 3, Qwen2) patterns"#)
        let normalizer = try tinyJSON { $0["normalizer"] = ["type": "NFC"] }
        XCTAssertEqual(message { try Tokenizer(tokenizerJSON: normalizer, tokenizerConfigJSON: nil, file: "t.json") },
                       "t.json: normalizer NFC is not supported (byte-level BPE tokenizers have none)")
        let wordPiece = try tinyJSON { json in
            var model = json["model"] as? [String: Any] ?? [:]
            model["type"] = "WordPiece"
            json["model"] = model
        }
        XCTAssertEqual(message { try Tokenizer(tokenizerJSON: wordPiece, tokenizerConfigJSON: nil, file: "t.json") },
                       "t.json: model type WordPiece is not supported (only byte-level BPE)")
        let fallback = try tinyJSON { json in
            var model = json["model"] as? [String: Any] ?? [:]
            model["byte_fallback"] = true
            json["model"] = model
        }
        XCTAssertEqual(message { try Tokenizer(tokenizerJSON: fallback, tokenizerConfigJSON: nil, file: "t.json") },
                       #"t.json: pre-tokenizer ByteLevel with no normalizer is not supported (supported with byte_fallback BPE: normalizer Replace " " → "▁" (Gemma) or Prepend "▁" + Replace (Llama 2, Mistral), or a Metaspace pre-tokenizer; decoder Replace/ByteFallback/Fuse with or without Strip)"#)
        XCTAssertEqual(message { try Tokenizer(tokenizerJSON: Data("{\"model\": [1,".utf8), tokenizerConfigJSON: nil, file: "t.json") },
                       "t.json: tokenizer.json is not valid JSON: unexpected end of input at byte 13")
        let deep = Data((String(repeating: "[", count: 100_000)).utf8)
        XCTAssertTrue(message { try Tokenizer(tokenizerJSON: deep, tokenizerConfigJSON: nil, file: "t.json") }
            .hasPrefix("t.json: tokenizer.json is not valid JSON: nesting deeper than"))
    }

    /// A tokenizer.json that spells the Llama 3 pattern as a Split is read as Llama 3 pre-tokenization.
    func testLlama3PatternRecognised() throws {
        let json = try tinyJSON {
            $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": SplitPattern.llama3Source], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]]
        }
        let t = try Tokenizer(tokenizerJSON: json, tokenizerConfigJSON: nil, file: "t.json")
        XCTAssertEqual(t.core.preTokenizer.steps, [.pattern(.llama3)])
        XCTAssertEqual(t.encode("12345"), [49, 50, 51, 52, 53])
    }
}
