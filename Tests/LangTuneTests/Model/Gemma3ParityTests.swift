import Foundation
import XCTest
import CLangTuneKernels
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

    /// Serving's batched products (`linearRowwise`) give every row bit for bit what it gets alone, for
    /// each block type of the Q4_K_M file (Q5_0, Q8_0, Q4_K, Q6_K), in float32 and with `--dtype bf16`'s
    /// int8 inputs; the int8 Q5_0 product stays within the input's rounding of the float32 one.
    func testBatchedRowsMatchSingleRowsOnEveryBlockType() throws {
        let m = try model().model
        var byType: [DType: LinearWeight] = [:]
        for layer in m.layers { for w in layer.projections { if let t = w.blocks?.dtype, byType[t] == nil { byType[t] = w } } }
        XCTAssertEqual(Set(byType.keys), [.q5_0, .q8_0, .q4_K, .q6_K])
        let rows = 5
        for (dtype, w) in byType.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let k = w.inFeatures, n = w.outFeatures
            var rng = SplitMix64(seed: 7)
            let x = (0..<rows * k).map { _ in rng.nextFloat() * 2 - 1 }
            var outputs: [[Float]] = []
            for bf16 in [false, true] {
                let backend = CPUBackend(bf16: bf16)
                var batched = [Float](repeating: .nan, count: rows * n), alone = batched
                backend.linearRowwise(w, x: x, rows: rows, y: &batched)
                for r in 0..<rows {
                    x.withUnsafeBufferPointer { xp in alone.withUnsafeMutableBufferPointer { yp in
                        backend.linear(w, x: xp.baseAddress! + r * k, rows: 1, y: yp.baseAddress! + r * n)
                    } }
                }
                XCTAssertEqual(batched.map(\.bitPattern), alone.map(\.bitPattern), "\(dtype) bf16=\(bf16): batched rows differ from single rows")
                outputs.append(alone)
            }
            let scale = outputs[0].map { abs($0) }.max()!
            let worst = zip(outputs[0], outputs[1]).map { abs($0 - $1) }.max()! / scale
            print("Gemma 3 \(dtype) \(n)x\(k): --dtype bf16 products within \(worst) of float32 (relative to the largest output)")
            if dtype.hasInt8Matvec && lt_int8_matvec_available() != 0 {
                // int8 inputs: each input rounded by up to 1/254 of its block's largest value (measured on
                // these matrices: Q5_0 3.1e-3, Q8_0 3.4e-3 of the largest output; a wrong unpacking is O(1)).
                XCTAssertGreaterThan(worst, 0, "\(dtype): --dtype bf16 should take the int8 path")
                XCTAssertLessThan(worst, 1e-2, "\(dtype): int8 inputs too far from float32")
            } else {
                XCTAssertEqual(worst, 0, "\(dtype): no int8 path, so --dtype bf16 should equal float32")
            }
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
