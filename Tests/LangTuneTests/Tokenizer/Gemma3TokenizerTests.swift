import Foundation
import XCTest
@testable import LangTune

/// Gemma 3's tokenizer from the real GGUF against transformers' GGUF tokenizer (fixture:
/// Tests/Reference/gemma_tokenizer_fixtures.py): 128 hard cases, 2,200 corpus lines (rule v1),
/// 24 Gemma-specific cases, 30 rows with BOS; decoding checked against the input or the reference.
final class Gemma3TokenizerTests: XCTestCase {
    private static let shared = Result { () throws -> Tokenizer in
        let url = try TestPaths.require(TestPaths.gemma3GGUF)
        return try Tokenizer(ggufMetadata: TokenizerTestGGUF.readMetadata(url), file: url.lastPathComponent)
    }

    private func extraCases() throws -> [String] {
        let data = try Data(contentsOf: TestPaths.fixture("tokenizer/gemma3_extra_cases.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String])
    }

    func testMatchesReferenceIds() throws {
        let extra = try extraCases()
        XCTAssertEqual(extra.count, 24)
        let checked = try TokenizerFixtures.check(try Self.shared.get(), fixture: "gemma3_ids.jsonl", extra: extra)
        XCTAssertGreaterThanOrEqual(checked, 148 + 34)
    }

    func testProperties() throws {
        let t = try Self.shared.get()
        XCTAssertEqual(t.vocabSize, 262_144)
        XCTAssertEqual(t.bosTokenId, 2)
        XCTAssertEqual(t.eosTokenId, 1)
        XCTAssertEqual(t.bosToken, "<bos>")
        XCTAssertEqual(t.specialPrefixIds, [2])
        XCTAssertEqual(t.id(forToken: "<start_of_turn>"), 105)
        XCTAssertEqual(t.id(forToken: "<end_of_turn>"), 106)
        XCTAssertTrue(t.isSpecial(106))
        XCTAssertFalse(t.isSpecial(108))  // "\n\n" is user-defined: matched whole, not special
        XCTAssertEqual(t.encode("Hello world", addSpecialTokens: true), [2, 9259, 1902])
        XCTAssertEqual(t.encode("<start_of_turn>user\n"), [105, 2364, 107])
        XCTAssertEqual(t.decode([2, 9259, 1902, 106], skipSpecialTokens: true), "Hello world")
        XCTAssertEqual(t.tokenBytes(138), Array("  ".utf8))
    }

    /// The tokenizer.json LangTune writes for the GGUF vocabulary (as transformers builds it: merges from
    /// `generate_merges`, byte fallback) read back by LangTune's tokenizer.json loader: the same ids on
    /// every fixture row. transformers' own reading of it is checked in Tests/Interop.
    func testHuggingFaceExportTokenizesAlike() throws {
        let url = try TestPaths.require(TestPaths.gemma3GGUF)
        let metadata = try TokenizerTestGGUF.readMetadata(url)
        let (json, config) = try TokenizerExport.huggingFaceFiles(ggufMetadata: metadata, file: url.lastPathComponent,
                                                                  chatTemplate: "{{ x }}", modelMaxLength: 32768)
        let exported = try Tokenizer(tokenizerJSON: Data(json), tokenizerConfigJSON: Data(config), file: "tokenizer.json")
        let checked = try TokenizerFixtures.check(exported, fixture: "gemma3_ids.jsonl", extra: try extraCases())
        XCTAssertGreaterThanOrEqual(checked, 148 + 34)
        let original = try Self.shared.get()
        XCTAssertEqual(exported.vocabSize, original.vocabSize)
        for id in [0, 1, 2, 3, 105, 106, 107, 108, 138, 168, 236_761, 255_999, 262_143] {
            XCTAssertEqual(exported.tokenBytes(id), original.tokenBytes(id), "token \(id)")
            XCTAssertEqual(exported.isSpecial(id), original.isSpecial(id), "token \(id)")
        }
        XCTAssertEqual([exported.bosTokenId, exported.eosTokenId], [2, 1])
        XCTAssertEqual(exported.specialPrefixIds, [2])

        // transformers' count for this vocabulary (Tests/Interop compares the lists themselves).
        let root = try MiniJSONParser.parse(Data(json))
        XCTAssertEqual(root["model"]?["merges"]?.array?.count, 514_906)
        XCTAssertEqual(root["added_tokens"]?.array?.count, 6384)
        XCTAssertEqual(root["model"]?["unk_token"]?.string, "<unk>")
    }
}
