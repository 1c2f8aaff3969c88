import Foundation
import XCTest
@testable import LangTune

/// Continuous batching with many adapters on the real model: every row gets exactly what it gets alone,
/// and the engine's limits, cancellation and draining.
final class ServingEngineTests: XCTestCase {
    static func model(bf16: Bool = false) throws -> LanguageModel {
        try LanguageModel(try TestPaths.require(TestPaths.smolLM2GGUF).path, backend: CPUBackend(bf16: bf16))
    }

    /// Adapters with random B (PEFT's zero B would change nothing), on all seven projections.
    static func adapters(_ lm: LanguageModel, count: Int) throws -> [LoRAAdapter] {
        try (0..<count).map { i in
            let a = try LoRAAdapter(config: LoRAConfig(rank: 8, alpha: 16), model: lm.model.config, seed: UInt64(10 + i))
            a.randomizeB(seed: UInt64(100 + i), amplitude: 0.05)
            return a
        }
    }

    /// One decoding step over rows with different adapters gives, bit for bit, each row's logits from a
    /// lone `forward` with that row's adapter; and the adapters do change the logits. In float32 and in
    /// `--dtype bf16` (int8 inputs: every row quantized on its own, the tiles shared).
    func testMultiAdapterStepEqualsEachRowAlone() throws {
        try multiAdapterStepEqualsEachRowAlone(bf16: false)
        try multiAdapterStepEqualsEachRowAlone(bf16: true)
    }

    private func multiAdapterStepEqualsEachRowAlone(bf16: Bool) throws {
        let lm = try Self.model(bf16: bf16)
        let adapters: [LoRAAdapter?] = try [nil] + Self.adapters(lm, count: 3)
        let prompts = try ["Türkiye'nin başkenti neresidir?", "中国的首都是哪里？", "Name three colours.", "Hi"]
            .map { try lm.promptIds($0, chat: true) }
        let forced = [42, 1000, 7, 314]
        let V = lm.model.vocabSize
        var caches: [KVCache] = []
        var alone: [[Float]] = []
        for (p, a) in zip(prompts, adapters) {
            let c = KVCache(config: lm.model.config)
            _ = lm.model.forward(p, cache: c, logits: .last, adapter: a)
            caches.append(c)
            let solo = KVCache(config: lm.model.config)
            _ = lm.model.forward(p, cache: solo, logits: .last, adapter: a)
            alone.append(lm.model.forward([forced[alone.count]], cache: solo, logits: .last, adapter: a))
        }
        let batched = lm.model.decodeStep(forced, caches: caches, adapters: adapters)
        for b in 0..<prompts.count {
            XCTAssertEqual(Array(batched[(b * V)..<((b + 1) * V)]), alone[b], "row \(b) differs from its lone step (bf16: \(bf16))")
        }
        // The same row with the base instead of its adapter: different logits (the test can fail).
        let c = KVCache(config: lm.model.config)
        _ = lm.model.forward(prompts[1], cache: c, logits: .last, adapter: nil)
        XCTAssertNotEqual(lm.model.forward([forced[1]], cache: c, logits: .last, adapter: nil), alone[1])
    }

    /// Ten requests over the base and three adapters, decoded together with rows joining and leaving,
    /// answer exactly what each answers alone, which is `generate`'s greedy answer with that adapter.
    func testConcurrentRequestsAnswerAsAlone() async throws {
        let lm = try Self.model()
        let adapters = try Self.adapters(lm, count: 3)
        let registry = AdapterRegistry(model: lm.model.config)
        for (i, a) in adapters.enumerated() { try registry.add(name: "a\(i)", adapter: a) }
        let texts = ["What is the capital of France?", "Count to five.", "Say hello in Turkish.", "What is 2+2?", "Name a fruit."]
        let requests: [ServingRequest] = try (0..<10).map { i in
            ServingRequest(promptIds: try lm.promptIds(texts[i % texts.count], chat: true), adapter: i % 4 == 0 ? nil : "a\(i % 3)",
                           maxTokens: 6 + 3 * (i % 4), sampling: SamplingOptions())
        }
        // Alone: `generate` with the adapter on the model.
        var expected: [String] = []
        for r in requests {
            lm.model.adapter = r.adapter.map { registry.adapter(named: $0)! }
            expected.append(lm.generate(promptIds: r.promptIds, options: GenerationOptions(maxTokens: r.maxTokens!)).text)
        }
        lm.model.adapter = nil
        XCTAssertGreaterThan(Set(expected).count, 3, "adapters should change the answers")

        let engine = ServingEngine(model: lm, adapters: registry, limits: ServingLimits(maxConcurrent: 4, maxQueue: 16))
        let handles = try requests.map { try engine.submit($0) }
        var got: [String] = []
        for (i, h) in handles.enumerated() {
            var text = ""
            var finished = false
            for await e in h.events {
                switch e {
                case .text(let t): text += t
                case .finished(_, let usage):
                    finished = true
                    XCTAssertEqual(usage.promptTokens, requests[i].promptIds.count)
                case .failed(let err): XCTFail("request \(i): \(err)")
                }
            }
            XCTAssertTrue(finished)
            got.append(text)
        }
        XCTAssertEqual(got, expected)
        // A stream ends as its row leaves; the engine counts it just after.
        for _ in 0..<200 where engine.stats.counters.completed < 10 { try await Task.sleep(nanoseconds: 10_000_000) }
        let s = engine.stats
        XCTAssertEqual(s.counters.completed, 10)
        XCTAssertGreaterThan(s.counters.decodeSteps, 0)
        await engine.drain()
        XCTAssertThrowsError(try engine.submit(requests[0])) { XCTAssertEqual($0 as? ServingError, .shuttingDown) }
    }

    /// `grounded_context` requests, decoded together with free ones, answer exactly what `generate
    /// --grounded` answers, each answer is a span of its passage, and a free request is untouched.
    func testGroundedRequestsAnswerAsGenerate() async throws {
        let lm = try Self.model()
        let passages = ["Ankara, 13 Ekim 1923'ten beri Türkiye'nin başkentidir. Şehir İç Anadolu Bölgesi'nde yer alır.",
                        "北京是中华人民共和国的首都，位于华北平原北部。"]
        let questions = ["Türkiye'nin başkenti neresidir?", "中国的首都是哪里？"]
        var requests: [ServingRequest] = []
        for (p, q) in zip(passages, questions) {
            let template = try XCTUnwrap(QAPrompt.defaultTemplate(language: QAPrompt.detectLanguage(q)))
            let ids = try lm.promptIds(QAPrompt.fill(template, context: p, question: q), chat: true)
            requests.append(ServingRequest(promptIds: ids, maxTokens: 16, grounding: GroundedSpan(p)))
        }
        requests.append(ServingRequest(promptIds: try lm.promptIds("Name a fruit.", chat: true), maxTokens: 8))
        let expected = requests.map { r in
            lm.generate(promptIds: r.promptIds, options: GenerationOptions(maxTokens: r.maxTokens!, grounding: r.grounding)).text
        }
        for (i, p) in passages.enumerated() {
            let answer = expected[i].trimmingCharacters(in: .whitespaces)
            XCTAssertFalse(answer.isEmpty)
            XCTAssertTrue(p.contains(answer), "grounded answer \(answer) is not a span of its passage")
        }
        let engine = ServingEngine(model: lm, adapters: AdapterRegistry(model: lm.model.config), limits: ServingLimits(maxConcurrent: 4))
        let handles = try requests.map { try engine.submit($0) }
        var got: [String] = []
        for h in handles {
            var text = ""
            for await e in h.events {
                if case .text(let t) = e { text += t }
                if case .failed(let err) = e { XCTFail("\(err)") }
            }
            got.append(text)
        }
        XCTAssertEqual(got, expected)
        await engine.drain()
    }

    /// Refusals: unknown adapter, prompt plus max_tokens over the context, a full queue; a cancelled
    /// request ends its stream and leaves its row.
    func testLimitsAndCancellation() async throws {
        let lm = try Self.model()
        let engine = ServingEngine(model: lm, limits: ServingLimits(maxConcurrent: 1, maxQueue: 1, contextLength: 64))
        let ids = try lm.promptIds("Tell me a long story about the sea.", chat: true)
        XCTAssertThrowsError(try engine.submit(ServingRequest(promptIds: ids, adapter: "nope"))) {
            XCTAssertEqual($0 as? ServingError, .unknownModel("nope"))
        }
        XCTAssertThrowsError(try engine.submit(ServingRequest(promptIds: ids, maxTokens: 1000))) {
            guard case .contextExceeded = $0 as? ServingError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try engine.submit(ServingRequest(promptIds: ids, maxTokens: 0))) {
            XCTAssertEqual($0 as? ServingError, .invalidMaxTokens(0))
        }
        let long = ServingRequest(promptIds: ids, maxTokens: 64 - ids.count)
        let first = try engine.submit(long)
        let second = try engine.submit(long)
        XCTAssertThrowsError(try engine.submit(long)) { XCTAssertEqual($0 as? ServingError, .queueFull(retryAfterSeconds: 1)) }
        first.cancel()
        second.cancel()
        for h in [first, second] {
            for await e in h.events { if case .finished = e { XCTFail("a cancelled request finished") } }
        }
        for _ in 0..<200 where engine.stats.running + engine.stats.queued > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(engine.stats.running + engine.stats.queued, 0)
        XCTAssertEqual(engine.stats.counters.cancelled, 2)
        // The engine still serves.
        var text = ""
        for await e in try engine.submit(ServingRequest(promptIds: ids, maxTokens: 3)).events { if case .text(let t) = e { text += t } }
        XCTAssertFalse(text.isEmpty)
        await engine.drain()
    }
}
