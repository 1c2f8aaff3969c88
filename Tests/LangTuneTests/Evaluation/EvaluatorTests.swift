import Foundation
import XCTest
@testable import LangTune

/// Batched decoding, the evaluator on the real model, the report and `eval`'s command line.
final class EvaluatorTests: XCTestCase {
    static func model() throws -> LanguageModel {
        try LanguageModel(try TestPaths.require(TestPaths.smolLM2GGUF).path)
    }

    /// Several sequences of different lengths decoded in one step give the logits each
    /// gives alone, and greedy answers equal `generate`'s, token for token.
    func testBatchedDecodingMatchesOneSequenceAtATime() throws {
        let lm = try Self.model()
        let prompts = try ["Türkiye'nin başkenti neresidir?", "中国的首都是哪里？请简单回答。", "Name three colours of the rainbow, please, in a list."]
            .map { try lm.promptIds($0, chat: true) }
        let V = lm.model.vocabSize
        var caches: [KVCache] = []
        var firsts: [[Float]] = []
        for p in prompts {
            let c = KVCache(config: lm.model.config, capacity: 8)
            firsts.append(lm.model.forward(p, cache: c, logits: .last))
            caches.append(c)
        }
        // One step with a forced token per sequence, against the single-sequence forward.
        let forced = [42, 1000, 7]
        let singles: [[Float]] = zip(prompts, forced).map { p, t in
            let c = KVCache(config: lm.model.config, capacity: 8)
            _ = lm.model.forward(p, cache: c, logits: .last)
            return lm.model.forward([t], cache: c, logits: .last)
        }
        let batched = lm.model.decodeStep(forced, caches: caches)
        for b in 0..<3 {
            let one = singles[b], many = Array(batched[(b * V)..<((b + 1) * V)])
            let scale = one.map(abs).max()!
            let worst = zip(one, many).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst / scale, 1e-4, "sequence \(b)")
        }
        XCTAssertEqual(caches.map(\.length), prompts.map { $0.count + 1 })

        // Greedy answers through the evaluator's decoder equal generate()'s.
        let evaluator = Evaluator(options: EvalOptions(maxNewTokens: 12, batchSize: 3))
        let fresh = prompts.map { p -> (KVCache, [Float]) in
            let c = KVCache(config: lm.model.config, capacity: 8)
            return (c, lm.model.forward(p, cache: c, logits: .last))
        }
        let ours = evaluator.greedyDecode(lm, caches: fresh.map(\.0), firstLogits: fresh.map(\.1), stops: lm.stopTokenIds)
        for (b, p) in prompts.enumerated() {
            let ref = lm.generate(promptIds: p, options: GenerationOptions(maxTokens: 12))
            let refIds = ref.ids.filter { !lm.stopTokenIds.contains($0) }
            XCTAssertEqual(ours[b].ids, refIds, "sequence \(b)")
        }
    }

    /// The evaluator's perplexity is the teacher-forced likelihood of the answer after the prompt,
    /// the same number a plain forward pass over prompt + answer gives.
    func testAnswerPerplexityEqualsAFullForwardPass() throws {
        let lm = try Self.model()
        let raw = try DatasetReader.read(TestPaths.repoRoot.appendingPathComponent("data/sample/tr_qa.json").path)
        let evaluator = Evaluator(options: EvalOptions(maxExamples: 2, maxNewTokens: 4, batchSize: 2))
        let prep = try evaluator.items(raw, model: lm)
        XCTAssertEqual(prep.items.count, 2)
        let results = evaluator.run(prep.items, model: lm)
        for (item, r) in zip(prep.items, results) {
            let ids = item.promptIds + item.answerIds
            let logits = lm.model.forward(ids, cache: KVCache(config: lm.model.config, capacity: ids.count), logits: .all)
            var nll = 0.0
            for t in item.promptIds.count..<ids.count { nll -= logSoftmax(logits, row: t - 1, vocab: lm.model.vocabSize, index: ids[t]) }
            XCTAssertEqual(r.nll, nll, accuracy: 1e-3 * abs(nll))
            XCTAssertEqual(r.tokens, item.answerIds.count)
            XCTAssertNotNil(r.prediction)
            XCTAssertEqual(item.language, "tr")
        }
    }

    func testAnswerLanguageClasses() {
        XCTAssertEqual(AnswerLanguage.classify("Osmanlı İmparatorluğu", expected: "tr"), .target)
        XCTAssertEqual(AnswerLanguage.classify("The Ottoman Empire", expected: "tr"), .english)
        XCTAssertEqual(AnswerLanguage.classify("1453", expected: "tr"), .neutral)
        XCTAssertEqual(AnswerLanguage.classify("Ankara", expected: "tr"), .neutral)
        XCTAssertEqual(AnswerLanguage.classify("  ", expected: "tr"), .empty)
        XCTAssertEqual(AnswerLanguage.classify("北京", expected: "zh"), .target)
        XCTAssertEqual(AnswerLanguage.classify("The capital of China is Beijing", expected: "zh"), .english)
        XCTAssertEqual(AnswerLanguage.classify("IBM", expected: "zh"), .neutral)
        XCTAssertEqual(AnswerLanguage.classify("Москва", expected: "tr"), .other)
        XCTAssertEqual(AnswerLanguage.classify("東京です", expected: "zh"), .target)
        XCTAssertEqual(AnswerLanguage.classify("とうきょう", expected: "zh"), .other)
        let items = ["Ankara", "The city of Ankara", "Ankara'dır", ""].enumerated().map { i, p in
            (EvalItem(id: "\(i)", origin: "", kind: .qa, language: "tr", question: "", promptIds: [], answerIds: [], references: ["Ankara"]), p)
        }
        let m = EvalMetrics.aggregate(items: items.map(\.0), results: items.map { EvalMetrics.score(prediction: $0.1, item: $0.0) })
        XCTAssertEqual(m.languageFidelity, 50)   // neutral + target; English and empty are not
        XCTAssertEqual(m.englishRate, 25)
        XCTAssertEqual(m.exactMatch, 25)
        XCTAssertEqual(m.f1!, (100 + 50 + 0 + 0) / 4, accuracy: 1e-9)
        XCTAssertNil(m.perplexity)
    }

    func testReportIsSelfContainedAndEscapesText() throws {
        var m = EvalMetrics(examples: 2)
        m.f1 = 40; m.exactMatch = 10; m.chrf = 30; m.bleu = 5; m.rougeL = 41; m.languageFidelity = 90; m.perplexity = 3.2
        var b = m
        b.f1 = 5
        let curves = TrainingCurves(train: [(1, 3.0), (2, 2.0), (3, 1.5)], validation: [(0, 3.2), (3, 1.4)])
        let report = EvalReport(title: "t", facts: [("data", "x.json")], columns: ["base", "adapted"], metrics: [b, m],
                                curves: curves, samples: [ReportSample(id: "q1", question: "<script>alert(1)</script> İ 中",
                                                                       references: ["a & b"], answers: ["x", nil], f1: [0, nil])])
        let html = report.html()
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; İ 中"))
        XCTAssertTrue(html.contains("a &amp; b"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2, "loss chart and metric bars")
        for external in ["src=", "<link", "<script", "@import", "url("] {
            XCTAssertFalse(html.contains(external), "no external resources or scripts: \(external)")
        }
        // The bar of F1 40 is 40% of the 700-pixel plot.
        XCTAssertTrue(html.contains("width=\"280.0\""))
    }

    func testTrainingCurvesReadMetricsJSONL() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lt-curves-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("metrics.jsonl").path
        try Data("""
            {"step":0,"val_loss":3.0}
            {"step":1,"loss":2.5}
            {"step":2,"loss":2.0,"val_loss":2.2}
            {"step":2,"loss":1.9}
            {"step":3,"lo
            """.utf8).write(to: URL(fileURLWithPath: p))
        let c = try XCTUnwrap(TrainingCurves.load(p))
        XCTAssertEqual(c.train.map(\.step), [1, 2])
        XCTAssertEqual(c.train.last?.value, 1.9)
        XCTAssertEqual(c.validation.map(\.value), [3.0, 2.2])
        XCTAssertNil(TrainingCurves.load(dir.appendingPathComponent("none.jsonl").path))
    }
}

final class FertilityTests: XCTestCase {
    func testCountsWordsCharactersAndTokens() throws {
        let lm = try EvaluatorTests.model()
        let s = Fertility.measure("Merhaba dünya, 2024!\n中文 text", tokenizer: lm.tokenizer)
        XCTAssertEqual(s.characters, 18 + 2 + 4)
        XCTAssertEqual(s.words, 3 + 2 + 1)
        XCTAssertEqual(s.tokens, lm.tokenizer.encode("Merhaba dünya, 2024!").count + lm.tokenizer.encode("中文 text").count)
        XCTAssertEqual(s.bytes, "Merhaba dünya, 2024!\n中文 text".utf8.count)
    }

    /// The built-in English reference is data/fertility/en.txt, and Turkish costs the
    /// English-centric SmolLM2 tokenizer well over twice the tokens per word.
    func testFertilityCommandOnTheShippedTranslations() throws {
        let model = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let en = try String(contentsOf: TestPaths.repoRoot.appendingPathComponent("data/fertility/en.txt"), encoding: .utf8)
        XCTAssertEqual(Fertility.englishReference, en.trimmingCharacters(in: .newlines))
        let r = try CLI.run(["inspect", model, "--fertility", TestPaths.repoRoot.appendingPathComponent("data/fertility/tr.txt").path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(j["language"] as? String, "tr")
        let ratio = try XCTUnwrap(j["word_ratio"] as? Double)
        XCTAssertGreaterThan(ratio, 2.5)
        XCTAssertLessThan(ratio, 5)
    }
}
