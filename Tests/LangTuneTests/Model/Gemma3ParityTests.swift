import Foundation
import XCTest
@testable import LangTune

/// The real Gemma 3 270M GGUF (Q4_K_M) against transformers' float32 run on the same dequantized
/// weights (fixture: Tests/Reference/gemma_model_fixtures.py): prompt ids, top-10 logits, mean
/// log-probability and 32 greedy tokens for chat and plain prompts, a prompt past the 512-token
/// sliding window, and the same model with an 8-token window.
final class Gemma3ParityTests: XCTestCase {
    struct Conversation: Decodable {
        var messages: [ChatMessage]
        var rendered: String
        var prompt_rendered: String
    }
    struct Fixture: Decodable {
        var eos_ids: [Int]
        var template_sha256: String
        var cases: [ParityCase]
        var window_cases: [ParityCase]
        var conversation: Conversation
    }

    private func fixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: TestPaths.fixture("model/gemma3.json")))
    }

    private func model() throws -> LanguageModel {
        try LanguageModel(TestPaths.require(TestPaths.gemma3GGUF).path)
    }

    /// The same file with another sliding window (the reference's `sliding_window` override).
    private func model(slidingWindow: Int) throws -> LlamaModel {
        let files = try ModelFiles.load(TestPaths.require(TestPaths.gemma3GGUF).path)
        var config = files.config
        config.gemma3?.slidingWindow = slidingWindow
        let changed = ModelFiles(path: files.path, format: files.format, config: config, tensors: files.tensors,
                                 tokenizer: files.tokenizer, chatTemplate: files.chatTemplate, generationDefaults: nil)
        return try LlamaModel(files: changed)
    }

    func testConfigFromGGUF() throws {
        let c = try model().model.config
        XCTAssertEqual(c.architecture, "gemma3")
        XCTAssertEqual([c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKVHeads, c.headDim], [640, 2048, 18, 4, 1, 256])
        XCTAssertEqual(c.ropeTheta, 1_000_000)
        XCTAssertTrue(c.tieWordEmbeddings)
        let g = try XCTUnwrap(c.gemma3)
        XCTAssertEqual(g.slidingWindow, 512)
        XCTAssertEqual(g.localRopeTheta, 10_000)
        XCTAssertEqual(g.queryPreAttnScalar, 256)
        XCTAssertNil(g.finalLogitSoftcap)
        XCTAssertEqual((0..<18).filter { !g.isLocal(layer: $0) }, [5, 11, 17])
    }

    func testMatchesTransformers() throws {
        let f = try fixture()
        XCTAssertEqual(f.cases.filter { $0.messages != nil }.count, 6)
        XCTAssertGreaterThan(try XCTUnwrap(f.cases.last).prompt_ids.count, 512, "a case past the sliding window")
        let lm = try model()
        XCTAssertEqual(lm.stopTokenIds, Set(f.eos_ids))
        for c in f.cases { try assertMatchesReference(lm, c, eos: lm.stopTokenIds) }
    }

    func testSlidingWindowMatchesTransformers() throws {
        let f = try fixture()
        let c = try XCTUnwrap(f.window_cases.first)
        XCTAssertGreaterThan(c.prompt_ids.count, 3 * 8)
        let m = try model(slidingWindow: 8)
        assertLogitsMatchReference(m, c, eos: Set(f.eos_ids))
        // The full-window model must not pass: the window changes the numbers.
        let full = try model().model.forward(c.prompt_ids, cache: KVCache(config: m.config), logits: .last)
        let top = c.last_top10[0]
        XCTAssertGreaterThan(abs(Double(full[Int(top[0])]) - top[1]), 1e-2)
    }

    /// Batched decoding (eval's path) windows each sequence's cache as the single-sequence pass does.
    func testDecodeStepMatchesForwardPastTheWindow() throws {
        let f = try fixture()
        let ids = try XCTUnwrap(f.window_cases.first).prompt_ids
        let m = try model(slidingWindow: 8)
        let a = KVCache(config: m.config), b = KVCache(config: m.config), single = KVCache(config: m.config)
        _ = m.forward(Array(ids.prefix(20)), cache: a)
        _ = m.forward(Array(ids.prefix(11)), cache: b)
        _ = m.forward(Array(ids.prefix(20)), cache: single)
        for step in 0..<4 {
            let next = [ids[20 + step], ids[11 + step]]
            let batched = m.decodeStep(next, caches: [a, b])
            let alone = m.forward([next[0]], cache: single)
            let V = m.vocabSize
            var worst: Float = 0
            for i in 0..<V { worst = max(worst, abs(batched[i] - alone[i])) }
            XCTAssertLessThan(worst, 1e-3, "step \(step): batched vs single logits")
        }
    }

    func testEveryTierMatchesToo() throws {
        let f = try fixture()
        let lm = try model()
        let windowed = try model(slidingWindow: 8)
        try CPUTier.forEachRunnable { tier in
            print("Gemma 3 parity on the \(tier) tier")
            try assertMatchesReference(lm, f.cases[0], eos: lm.stopTokenIds)
            assertLogitsMatchReference(windowed, f.window_cases[0], eos: Set(f.eos_ids))
        }
    }

    /// The file has no chat template: Gemma 3's published one is used, rendered as transformers renders it,
    /// and a prompt's rendering is a prefix of the whole conversation's (training relies on it).
    func testChatTemplate() throws {
        let f = try fixture()
        let file = try String(contentsOf: TestPaths.fixture("chat/gemma3_template.jinja"), encoding: .utf8)
        XCTAssertEqual(BuiltInChatTemplates.gemma3 + "\n", file)
        let lm = try model()
        let conv = f.conversation
        let full = try lm.render(conv.messages, addGenerationPrompt: false)
        XCTAssertEqual(Array(full.utf8), Array(conv.rendered.utf8))
        let prompt = try lm.render(Array(conv.messages.dropLast()), addGenerationPrompt: true)
        XCTAssertEqual(Array(prompt.utf8), Array(conv.prompt_rendered.utf8))
        XCTAssertTrue(full.utf8.starts(with: prompt.utf8))
        XCTAssertThrowsError(try lm.render([ChatMessage(role: "assistant", content: "x")], addGenerationPrompt: true))
    }
}
