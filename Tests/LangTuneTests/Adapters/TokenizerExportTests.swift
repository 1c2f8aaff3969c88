import Foundation
import XCTest
@testable import LangTune

/// GGUF tokenizer metadata ↔ tokenizer.json: the converted tokenizer must give the same
/// ids (and decode to the same text) as the one it came from, on the hard cases.
final class TokenizerExportTests: XCTestCase {
    func assertSameTokenizer(_ got: Tokenizer, _ want: Tokenizer, _ label: String,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(got.vocabSize, want.vocabSize, label, file: file, line: line)
        XCTAssertEqual(got.bosTokenId, want.bosTokenId, label, file: file, line: line)
        XCTAssertEqual(got.eosTokenId, want.eosTokenId, label, file: file, line: line)
        XCTAssertEqual(got.specialPrefixIds, want.specialPrefixIds, label, file: file, line: line)
        var checked = 0
        for text in try TokenizerFixtures.hardCases() {
            for special in [false, true] {
                let ids = want.encode(text, addSpecialTokens: special)
                XCTAssertEqual(got.encode(text, addSpecialTokens: special), ids, "\(label): \(text.debugDescription)", file: file, line: line)
                XCTAssertEqual(got.decode(ids), want.decode(ids), label, file: file, line: line)
                checked += 1
            }
        }
        for id in stride(from: 0, to: want.vocabSize, by: 97) {
            XCTAssertEqual(got.tokenBytes(id), want.tokenBytes(id), "\(label): id \(id)", file: file, line: line)
            XCTAssertEqual(got.isSpecial(id), want.isSpecial(id), "\(label): id \(id)", file: file, line: line)
        }
        XCTAssertGreaterThan(checked, 100)
    }

    func testSmolLM2GGUFToTokenizerJSON() throws {
        let gguf = try GGUFFile(path: TestPaths.require(TestPaths.smolLM2GGUF).path)
        let want = try Tokenizer(ggufMetadata: gguf.metadata, file: gguf.path)
        let (json, config) = try TokenizerExport.huggingFaceFiles(
            ggufMetadata: gguf.metadata, file: gguf.path, chatTemplate: "{{ x }}", modelMaxLength: 8192)
        let got = try Tokenizer(tokenizerJSON: Data(json), tokenizerConfigJSON: Data(config), file: "exported")
        try assertSameTokenizer(got, want, "smollm2")
        XCTAssertEqual(got.specialPrefixIds, [])
        let cfg = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(config)) as? [String: Any])
        XCTAssertEqual(cfg["bos_token"] as? String, "<|im_start|>")
        XCTAssertEqual(cfg["eos_token"] as? String, "<|im_end|>")
        XCTAssertEqual(cfg["chat_template"] as? String, "{{ x }}")
        XCTAssertEqual(cfg["model_max_length"] as? Int, 8192)
        let tj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
        let pre = try XCTUnwrap(tj["pre_tokenizer"] as? [String: Any])
        let steps = try XCTUnwrap(pre["pretokenizers"] as? [[String: Any]])
        XCTAssertEqual(steps.map { $0["type"] as? String }, ["Digits", "ByteLevel"])
        XCTAssertEqual(steps[0]["individual_digits"] as? Bool, true)
        XCTAssertEqual(steps[1]["add_prefix_space"] as? Bool, false)
        XCTAssertEqual(steps[1]["use_regex"] as? Bool, true)
        let added = try XCTUnwrap(tj["added_tokens"] as? [[String: Any]])
        XCTAssertEqual(added.first?["content"] as? String, "<|endoftext|>")
        XCTAssertEqual(added.first?["special"] as? Bool, true)
    }

    /// Llama 3's tokenizer.json → GGUF metadata → tokenizer.json again, and with BOS added.
    func testLlama3TokenizerJSONToGGUFAndBack() throws {
        let url = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        let data = try Data(contentsOf: url)
        let want = try Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: nil, file: url.path)
        let entries = try TokenizerExport.ggufMetadata(tokenizerJSON: data, tokenizerConfigJSON: nil, file: url.path, vocabSize: 128256)
        var meta: [String: GGUFValue] = [:]
        for (k, v) in entries { meta[k] = v }
        XCTAssertEqual(meta["tokenizer.ggml.pre"]?.string, "llama-bpe")
        XCTAssertEqual(meta["tokenizer.ggml.tokens"]?.array?.count, 128256)
        XCTAssertEqual(meta["tokenizer.ggml.token_type"]?.array?[128000].int, 3)
        XCTAssertEqual(meta["tokenizer.ggml.token_type"]?.array?[1000].int, 1)
        XCTAssertEqual(meta["tokenizer.ggml.add_bos_token"]?.bool, false)
        let fromGGUF = try Tokenizer(ggufMetadata: meta, file: "exported.gguf")
        try assertSameTokenizer(fromGGUF, want, "llama3 → gguf")

        // A GGUF that adds BOS (llama.cpp's default for llama-bpe) → TemplateProcessing.
        meta["tokenizer.ggml.add_bos_token"] = .bool(true)
        meta["tokenizer.ggml.bos_token_id"] = .u32(128000)
        let withBOS = try Tokenizer(ggufMetadata: meta, file: "bos.gguf")
        XCTAssertEqual(withBOS.specialPrefixIds, [128000])
        let (json, config) = try TokenizerExport.huggingFaceFiles(ggufMetadata: meta, file: "bos.gguf", chatTemplate: nil, modelMaxLength: nil)
        let back = try Tokenizer(tokenizerJSON: Data(json), tokenizerConfigJSON: Data(config), file: "back")
        try assertSameTokenizer(back, withBOS, "gguf(bos) → json")
        XCTAssertEqual(back.encode("hi", addSpecialTokens: true).first, 128000)
        // Without tokenizer_config.json too (the TemplateProcessing alone adds BOS).
        let bare = try Tokenizer(tokenizerJSON: Data(json), tokenizerConfigJSON: nil, file: "back")
        XCTAssertEqual(bare.encode("hi", addSpecialTokens: true), withBOS.encode("hi", addSpecialTokens: true))
    }

    func testRefusesWhatCannotBeConverted() throws {
        let url = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        let data = try Data(contentsOf: url)
        XCTAssertThrowsError(try TokenizerExport.ggufMetadata(tokenizerJSON: data, tokenizerConfigJSON: nil, file: "t.json", vocabSize: 1000)) {
            XCTAssertTrue("\($0)".contains("t.json") && "\($0)".contains("128256"), "\($0)")
        }
        let meta: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.pre": .string("deepseek-llm"),
            "tokenizer.ggml.tokens": .array(elementType: 8, [.string("a")]), "tokenizer.ggml.merges": .array(elementType: 8, []),
        ]
        XCTAssertThrowsError(try TokenizerExport.huggingFaceFiles(ggufMetadata: meta, file: "x.gguf", chatTemplate: nil, modelMaxLength: nil)) {
            XCTAssertTrue("\($0)".contains("x.gguf") && "\($0)".contains("deepseek-llm"), "\($0)")
        }
    }
}
