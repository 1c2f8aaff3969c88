import Foundation
import XCTest
@testable import LangTune

/// Exact ids against Hugging Face `tokenizers` (fixtures made by Tests/Reference/tokenizer_fixtures.py):
/// 128 hard cases + 2,200 corpus lines (rule v1) + 20 rows with add_special_tokens, for each tokenizer,
/// and decode(encode(x)) == x byte for byte.
final class TokenizerFixtureTests: XCTestCase {
    func testSmolLM2MatchesReferenceIds() throws {
        let tokenizer = try TokenizerFixtures.smolLM2()
        let checked = try TokenizerFixtures.check(tokenizer, fixture: "smollm2_ids.jsonl")
        XCTAssertGreaterThanOrEqual(checked, 148)
    }

    func testLlama3MatchesReferenceIds() throws {
        let tokenizer = try TokenizerFixtures.llama3()
        let checked = try TokenizerFixtures.check(tokenizer, fixture: "llama3_ids.jsonl")
        XCTAssertGreaterThanOrEqual(checked, 148)
    }

    /// The corpus rule re-derived here must give exactly the lines the fixtures were made from.
    func testCorpusRuleV1MatchesFixtureHashes() throws {
        let corpus = try TokenizerFixtures.corpusV1()
        let data = try Data(contentsOf: TestPaths.fixture("tokenizer/corpus_v1.json"))
        let index = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        let shas = index["sha"] as? [String] ?? []
        XCTAssertEqual(shas.count, 2200)
        XCTAssertEqual(corpus.map(TokenizerFixtures.sha16), shas)
    }

    func testSmolLM2Properties() throws {
        let t = try TokenizerFixtures.smolLM2()
        XCTAssertEqual(t.vocabSize, 49152)
        XCTAssertEqual(t.bosTokenId, 1)
        XCTAssertEqual(t.eosTokenId, 2)
        XCTAssertEqual(t.bosToken, "<|im_start|>")
        XCTAssertEqual(t.eosToken, "<|im_end|>")
        XCTAssertEqual(t.id(forToken: "<|im_end|>"), 2)
        XCTAssertEqual(t.id(forToken: "<|endoftext|>"), 0)
        XCTAssertTrue(t.isSpecial(2))
        XCTAssertFalse(t.isSpecial(17))
        XCTAssertEqual(t.specialPrefixIds, [])  // add_bos_token is false in this GGUF
        XCTAssertEqual(t.encode("<|im_start|>user\nhi<|im_end|>").first, 1)
        XCTAssertEqual(t.decode([1, 2], skipSpecialTokens: true), "")
        XCTAssertEqual(t.decode([1]), "<|im_start|>")
    }

    func testLlama3Properties() throws {
        let t = try TokenizerFixtures.llama3()
        XCTAssertEqual(t.vocabSize, 128256)
        XCTAssertEqual(t.id(forToken: "<|begin_of_text|>"), 128000)
        XCTAssertEqual(t.id(forToken: "<|eot_id|>"), 128009)
        XCTAssertEqual(t.id(forToken: "Ġthe"), 279)
        XCTAssertEqual(t.id(forToken: "hello"), 15339)
        XCTAssertNil(t.id(forToken: "no such token here"))
        XCTAssertEqual(t.tokenBytes(279), Array(" the".utf8))
        XCTAssertEqual(t.tokenBytes(-1), [])
        // This tokenizer.json's post-processor is ByteLevel only: no BOS is added (as in `tokenizers`).
        XCTAssertEqual(t.encode("hello world", addSpecialTokens: true), [15339, 1917])
    }

    /// Expected strings from `tokenizers` 0.23.3 `decode(ids, skip_special_tokens=...)`.
    func testLlama3DecodeMatchesReference() throws {
        let t = try TokenizerFixtures.llama3()
        XCTAssertEqual(Array(t.decode([57923]).unicodeScalars), ["\u{FFFD}", "\u{FFFD}"])  // token "¦¬": two stray continuation bytes
        XCTAssertEqual(Array(t.decode([9468, 239]).unicodeScalars), ["\u{FFFD}"])  // F0 9F 91: one truncated sequence
        XCTAssertEqual(t.decode([9468, 239, 108]), "👰")
        XCTAssertEqual(t.decode([128000, 15339, 1917]), "<|begin_of_text|>hello world")
        XCTAssertEqual(t.decode([128000, 15339, 1917], skipSpecialTokens: true), "hello world")
        XCTAssertEqual(t.decode([9468, 239, 108, 128001]), "👰<|end_of_text|>")
        XCTAssertEqual(t.decode([15339, 999_999, 1917]), "hello world")  // unknown ids are skipped
    }

    func testLlama3WithConfigAddsBOS() throws {
        let url = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        let config = Data(#"{"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|eot_id|>"}, "add_bos_token": true}"#.utf8)
        let t = try Tokenizer(tokenizerJSON: Data(contentsOf: url), tokenizerConfigJSON: config, file: url.path)
        XCTAssertEqual(t.bosTokenId, 128000)
        XCTAssertEqual(t.eosTokenId, 128009)
        XCTAssertEqual(t.bosToken, "<|begin_of_text|>")
        XCTAssertEqual(t.eosToken, "<|eot_id|>")
        XCTAssertEqual(t.encode("hello world", addSpecialTokens: true), [128000, 15339, 1917])
        XCTAssertEqual(t.encode("hello world"), [15339, 1917])
    }

    /// Streaming output, concatenated, equals `decode`; no U+FFFD is emitted for characters
    /// split across tokens.
    func testStreamingDecoderMatchesDecode() throws {
        let t = try TokenizerFixtures.llama3()
        for text in try TokenizerFixtures.hardCases() {
            let ids = t.encode(text)
            var decoder = t.streamingDecoder()
            var streamed = ""
            for id in ids { streamed += decoder.feed(id) }
            XCTAssertFalse(decoder.hasPendingBytes, text.debugDescription)
            streamed += decoder.finish()
            XCTAssertEqual(Array(streamed.utf8), Array(text.utf8), text.debugDescription)
        }
        // Held-back bytes: "👰" is three tokens.
        var decoder = t.streamingDecoder()
        XCTAssertEqual(decoder.feed(9468), "")
        XCTAssertEqual(decoder.feed(239), "")
        XCTAssertTrue(decoder.hasPendingBytes)
        XCTAssertEqual(decoder.feed(108), "👰")
        // A truncated sequence is flushed as one U+FFFD, as decode gives.
        XCTAssertEqual(decoder.feed(9468), "")
        XCTAssertEqual(Array(decoder.finish().unicodeScalars), ["\u{FFFD}"])
        // A truncated sequence followed by a complete token.
        var d2 = t.streamingDecoder()
        let streamed = d2.feed([9468, 15339]) + d2.finish()
        XCTAssertEqual(Array(streamed.utf8), Array(t.decode([9468, 15339]).utf8))
        XCTAssertEqual(streamed, "\u{FFFD}hello")
    }
}

/// Sharing one tokenizer between threads: calls that find the word cache busy encode without it.
final class TokenizerConcurrencyTests: XCTestCase {
    func testConcurrentEncodeGivesSameIds() throws {
        let url = try TestPaths.require(TestPaths.smolLM2GGUF)
        let source = TokenizerSource.gguf(metadata: try TokenizerTestGGUF.readMetadata(url), file: url.lastPathComponent)
        let tokenizer = try Tokenizer(source: source)
        XCTAssertEqual(tokenizer.padTokenId, 2)
        let texts = try TokenizerFixtures.hardCases()
        let expected = texts.map { tokenizer.encode($0) }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var mismatches = 0
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<20 {
                for (k, text) in texts.enumerated() where (k + worker + round) % 3 == 0 {
                    if tokenizer.encode(text) != expected[k] {
                        results.lock.lock()
                        results.mismatches += 1
                        results.lock.unlock()
                    }
                }
            }
        }
        XCTAssertEqual(results.mismatches, 0)
    }

    func testHuggingFaceSource() throws {
        let url = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        let config = Data(#"{"pad_token": "<pad>", "eos_token": "<|eot_id|>"}"#.utf8)
        let t = try Tokenizer(source: .huggingFace(tokenizerJSON: Data(contentsOf: url), tokenizerConfigJSON: config, file: url.path))
        XCTAssertNil(t.padTokenId)  // "<pad>" is not in Llama 3's vocabulary
        XCTAssertEqual(t.eosTokenId, 128009)
        XCTAssertEqual(t.encode("Hello, world!"), [9906, 11, 1917, 0])
    }
}
