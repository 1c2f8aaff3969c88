import XCTest
@testable import LangTune

/// Generation behaviour on the real default model: streaming, stop strings,
/// limits, and KV-cache reuse across chat turns.
final class GenerationTests: XCTestCase {
    static let shared = Shared()
    final class Shared: @unchecked Sendable {
        lazy var model: LanguageModel? = try? LanguageModel(TestPaths.smolLM2GGUF.path)
    }

    func model() throws -> LanguageModel {
        _ = try TestPaths.require(TestPaths.smolLM2GGUF)
        return try XCTUnwrap(Self.shared.model)
    }

    func testStreamedPiecesMakeTheText() throws {
        let lm = try model()
        let ids = try lm.promptIds("Name three colors.", chat: true)
        var pieces: [String] = []
        let r = lm.generate(promptIds: ids, options: GenerationOptions(maxTokens: 20)) { pieces.append($0) }
        XCTAssertEqual(pieces.joined(), r.text)
        XCTAssertFalse(r.text.isEmpty)
        XCTAssertEqual(r.finishReason == .length, r.ids.count == 20)
        XCTAssertEqual(lm.tokenizer.decode(r.ids.filter { !lm.stopTokenIds.contains($0) }), r.text)
    }

    func testStopStringEndsGenerationAndIsCut() throws {
        let lm = try model()
        let ids = try lm.promptIds("Count from 1 to 10, separated by commas.", chat: true)
        let free = lm.generate(promptIds: ids, options: GenerationOptions(maxTokens: 40))
        guard let r5 = free.text.range(of: "5") else { throw XCTSkip("the model did not count: \(free.text)") }
        var streamed = ""
        let stopped = lm.generate(promptIds: ids, options: GenerationOptions(maxTokens: 40, stopStrings: ["5"])) { streamed += $0 }
        XCTAssertEqual(stopped.finishReason, .stop)
        XCTAssertEqual(stopped.text, String(free.text[..<r5.lowerBound]))
        XCTAssertEqual(streamed, stopped.text)
    }

    func testCacheReuseAcrossTurnsMatchesAFreshRun() throws {
        let lm = try model()
        var messages = [ChatMessage(role: "user", content: "Merhaba! Nasılsın?")]
        let ids1 = lm.tokenizer.encode(try lm.render(messages, addGenerationPrompt: true))
        let cache = KVCache(config: lm.model.config)
        let r1 = lm.generate(promptIds: ids1, options: GenerationOptions(maxTokens: 16), cache: cache, cachedIds: [])
        messages.append(ChatMessage(role: "assistant", content: r1.text))
        messages.append(ChatMessage(role: "user", content: "中国的首都是哪里？"))
        let ids2 = lm.tokenizer.encode(try lm.render(messages, addGenerationPrompt: true))
        let reused = lm.generate(promptIds: ids2, options: GenerationOptions(maxTokens: 16), cache: cache,
                                 cachedIds: Array((ids1 + r1.ids).prefix(cache.length)))
        let fresh = lm.generate(promptIds: ids2, options: GenerationOptions(maxTokens: 16))
        XCTAssertEqual(reused.ids, fresh.ids)
    }

    func testSeededSamplingIsReproducible() throws {
        let lm = try model()
        let ids = try lm.promptIds("Bir şiir yaz.", chat: true)
        let opts = GenerationOptions(maxTokens: 12, sampling: SamplingOptions(temperature: 0.9, topP: 0.95, seed: 1234))
        XCTAssertEqual(lm.generate(promptIds: ids, options: opts).ids, lm.generate(promptIds: ids, options: opts).ids)
    }
}
