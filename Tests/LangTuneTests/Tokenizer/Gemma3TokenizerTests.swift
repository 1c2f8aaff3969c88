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
}
