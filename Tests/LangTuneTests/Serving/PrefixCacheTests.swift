import XCTest
@testable import LangTune

/// `--dtype bf16` serving reuses the keys and values of prompt prefixes it has seen; a request that
/// takes a cached prefix must compute bit for bit what it computes without one.
final class PrefixCacheTests: XCTestCase {
    func testCachedPrefixGivesTheSameNumbers() throws {
        let lm = try ServingEngineTests.model(bf16: true)
        let adapter = try ServingEngineTests.adapters(lm, count: 1)[0]
        let system = "You are a careful assistant who answers questions about geography in one short sentence."
        let p1 = try lm.promptIds("What is the capital of France?", chat: true, system: system)
        let p2 = try lm.promptIds("Türkiye'nin başkenti neresidir?", chat: true, system: system)
        var shared = 0
        while p1[shared] == p2[shared] { shared += 1 }
        XCTAssertGreaterThan(shared, 16, "the prompts should share the system turn")

        /// Prefill with `cache` (nil: a fresh one, nothing to reuse), then one decoding step.
        func run(_ prompt: [Int], _ adapter: LoRAAdapter?, _ prefixes: PrefixCache?) -> (first: [Float], next: [Float], reused: Int) {
            let kv = KVCache(config: lm.model.config)
            let r = (prefixes ?? PrefixCache()).prefill(prompt, cache: kv, adapter: adapter, model: lm.model)
            let next = lm.model.decodeStep([Sampler.argmax(r.logits)], caches: [kv], adapters: [adapter])
            return (r.logits, next, r.reused)
        }
        let prefixes = PrefixCache(chunk: 8)
        let first = run(p1, nil, prefixes)
        XCTAssertEqual(first.reused, 0)
        let alone = run(p2, nil, nil)
        let cached = run(p2, nil, prefixes)
        XCTAssertEqual(cached.reused, shared / 8 * 8)
        XCTAssertEqual(cached.first, alone.first, "the prompt's logits changed with a cached prefix")
        XCTAssertEqual(cached.next, alone.next, "the cached keys and values differ from computed ones")
        // The whole prompt cached: its last chunk still runs (its logits start the answer).
        let again = run(p1, nil, prefixes)
        XCTAssertEqual(again.reused, (p1.count - 1) / 8 * 8)
        XCTAssertEqual(again.first, first.first)
        XCTAssertEqual(again.next, first.next)
        // Another adapter's keys and values are not the base's.
        let adapted = run(p2, adapter, prefixes)
        XCTAssertEqual(adapted.reused, 0)
        XCTAssertNotEqual(adapted.first, alone.first)
        XCTAssertEqual(run(p2, adapter, prefixes).first, adapted.first)
        // Bounded: a cache of a few kilobytes keeps nothing.
        let tiny = PrefixCache(chunk: 8, maxBytes: 1024)
        _ = run(p1, nil, tiny)
        XCTAssertEqual(tiny.byteCount, 0)
        XCTAssertEqual(run(p1, nil, tiny).reused, 0)
    }

    /// Through the engine: requests sharing a system prompt answer what each answers on a fresh engine.
    func testEngineAnswersAsAloneWithPrefixes() async throws {
        let lm = try ServingEngineTests.model(bf16: true)
        let system = "You are a helpful assistant. Answer in one sentence, in the language of the question."
        let texts = ["What is the capital of France?", "Count to five.", "Say hello in Turkish.", "中国的首都是哪里？"]
        let requests = try texts.map {
            ServingRequest(promptIds: try lm.promptIds($0, chat: true, system: system), adapter: nil, maxTokens: 8, sampling: SamplingOptions())
        }
        func answer(_ engine: ServingEngine, _ r: ServingRequest) async throws -> String {
            var text = ""
            for await e in try engine.submit(r).events { if case .text(let t) = e { text += t } }
            return text
        }
        var alone: [String] = []
        for r in requests {
            let fresh = ServingEngine(model: lm)
            alone.append(try await answer(fresh, r))
            await fresh.drain()
        }
        let engine = ServingEngine(model: lm, limits: ServingLimits(maxConcurrent: 4, maxQueue: 8))
        var got: [String] = []
        for r in requests { got.append(try await answer(engine, r)) }
        XCTAssertEqual(got, alone)
        XCTAssertGreaterThan(engine.stats.counters.promptTokensReused, 16 * (requests.count - 1) - 1)
        await engine.drain()
    }
}
