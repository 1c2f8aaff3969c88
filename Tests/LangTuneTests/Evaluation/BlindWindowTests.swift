import Foundation
import XCTest
@testable import LangTune

/// Evaluation prompts never depend on the reference answer: a context that does not fit is
/// asked about in windows chosen from the text alone, which cover the whole passage.
final class BlindWindowTests: XCTestCase {
    /// Six sentences of 8 "tokens" each (one per 4 scalars) with a budget of 17: windows of
    /// two sentences, each starting one sentence after the previous, the last ending the passage.
    func testWindowsCoverThePassageWithOverlapAndFitTheBudget() {
        let sentences = (1...6).map { "Sentence number \($0) is here, ok." }
        let context = sentences.joined(separator: " ")
        let count = { (s: String) in (s.unicodeScalars.count + 3) / 4 }
        let w = BlindContextWindows(context, budget: 17, count: count)
        XCTAssertEqual(w.pieces.count, 6)
        let windows = w.windows(fits: { _ in true }, budget: 17)
        XCTAssertEqual(windows, (0..<5).map { sentences[$0] + " " + sentences[$0 + 1] })
        for s in sentences { XCTAssertTrue(windows.contains { $0.contains(s) }, s) }
        for text in windows { XCTAssertLessThanOrEqual(count(text), 17) }
        // A window the real prompt cannot hold is shortened.
        let short = w.windows(fits: { count($0) <= 10 }, budget: 17)
        XCTAssertEqual(short, sentences)
    }

    /// A sentence longer than the budget is cut into pieces that fit, at spaces.
    func testALongSentenceIsCutIntoPiecesThatFit() {
        let words = (0..<200).map { "kelime\($0)" }
        let context = words.joined(separator: " ")
        let count = { (s: String) in s.split(separator: " ").count }
        let w = BlindContextWindows(context, budget: 30, count: count)
        XCTAssertGreaterThan(w.pieces.count, 6)
        XCTAssertTrue(w.tokens.allSatisfy { $0 <= 30 })
        XCTAssertEqual(w.pieces.joined().split(separator: " ").map(String.init), words, "no word lost or split")
        let windows = w.windows(fits: { _ in true }, budget: 30)
        XCTAssertTrue(windows.first!.hasPrefix("kelime0 "))
        XCTAssertTrue(windows.last!.hasSuffix("kelime199"))
    }

    /// The same question about the same context gives the same prompts whatever the answer is
    /// and wherever it sits, with the whole context (default limit) and with windows (short limit).
    func testEvaluationPromptsIgnoreTheAnswer() throws {
        let lm = try EvaluatorTests.model()
        let raw = try DatasetReader.read(TestPaths.repoRoot.appendingPathComponent("data/sample/tr_qa.json").path)
        guard case .qa(let item) = raw[0].body else { return XCTFail("expected a SQuAD item") }
        let long = Array(repeating: item.context, count: 4).joined(separator: "\n")
        let last = "Anıtkabir"
        let lastStart = long.unicodeScalars.count - "Anıtkabir de Ankara'dadır.".unicodeScalars.count
        let a = QAItem(id: "a", context: long, question: item.question, answers: ["Ankara"], answerStart: 0)
        let b = QAItem(id: "b", context: long, question: item.question, answers: [last], answerStart: lastStart)
        let examples = [a, b].map { RawExample(body: .qa($0), origin: "t.json: item \($0.id)") }
        for limit in [lm.model.config.maxPositionEmbeddings, 160] {
            let evaluator = Evaluator(options: EvalOptions(data: TrainingDataOptions(maxSeqLen: limit, labelAllAssistantTurns: false),
                                                           maxNewTokens: 8, batchSize: 8))
            let items = try evaluator.items(examples, model: lm).items
            XCTAssertEqual(items.count, 2)
            XCTAssertEqual(items[0].promptIds, items[1].promptIds, "limit \(limit)")
            XCTAssertEqual(items[0].windows.map(\.promptIds), items[1].windows.map(\.promptIds), "limit \(limit)")
            XCTAssertNotEqual(items[0].answerIds, items[1].answerIds)
            if limit == 160 {
                XCTAssertGreaterThanOrEqual(items[0].windows.count, 3)
                for w in items[0].windows { XCTAssertLessThanOrEqual(w.promptIds.count + 8, 160) }
                // Every word of the passage is in some window (long sentences are cut at spaces).
                let texts = items[0].windows.map { lm.tokenizer.decode($0.promptIds, skipSpecialTokens: true) }
                for word in item.context.split(separator: " ") {
                    XCTAssertTrue(texts.contains { $0.contains(word) }, String(word))
                }
                XCTAssertTrue(texts.first!.contains("Ankara, 13 Ekim"), "the first window starts the passage")
                // The answer comes from one window; the cut is counted.
                let results = evaluator.run(items, model: lm)
                XCTAssertEqual(results[0].windows, items[0].windows.count)
                XCTAssertNotNil(results[0].window)
                XCTAssertEqual(EvalMetrics.aggregate(items: items, results: results).contextsCut, 2)
            } else {
                XCTAssertTrue(items[0].windows.isEmpty, "the whole context fits the model")
            }
        }
    }
}
