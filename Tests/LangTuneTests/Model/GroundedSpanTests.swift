import Foundation
import XCTest
@testable import LangTune

/// `--grounded`: the suffix automaton accepts exactly the substrings of its text, and
/// grounded answers from the real model are spans of their context.
final class GroundedSpanTests: XCTestCase {
    func accepts(_ a: SuffixAutomaton, _ bytes: [UInt8]) -> Bool {
        var s = SuffixAutomaton.root
        for b in bytes {
            guard let n = a.step(s, b) else { return false }
            s = n
        }
        return true
    }

    /// Against a plain substring search, on random strings over small alphabets (many repeats,
    /// so the clone path of the construction runs) and on UTF-8 text.
    func testAutomatonAcceptsExactlyTheSubstrings() {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<200 {
            let alphabet = UInt8(2 + trial % 4)
            let text = (0..<Int.random(in: 0...60, using: &rng)).map { _ in UInt8.random(in: 0..<alphabet, using: &rng) + 97 }
            let a = SuffixAutomaton(text)
            for _ in 0..<50 {
                let n = Int.random(in: 1...8, using: &rng)
                let probe: [UInt8]
                if !text.isEmpty && Bool.random(using: &rng) {
                    let s = Int.random(in: 0..<text.count, using: &rng)
                    probe = Array(text[s..<min(text.count, s + n)])
                } else {
                    probe = (0..<n).map { _ in UInt8.random(in: 0..<alphabet, using: &rng) + 97 }
                }
                let expected = Self.contains(text, probe)
                XCTAssertEqual(accepts(a, probe), expected, "text \(text) probe \(probe)")
            }
        }
        let zh = SuffixAutomaton(Array("北京是中华人民共和国的首都".utf8))
        XCTAssertTrue(accepts(zh, Array("人民共和国".utf8)))
        XCTAssertTrue(accepts(zh, Array("人民".utf8).dropLast().map { $0 }), "half a character is a prefix of a span")
        XCTAssertFalse(accepts(zh, Array("上海".utf8)))
    }

    static func contains(_ text: [UInt8], _ probe: [UInt8]) -> Bool {
        guard probe.count <= text.count else { return false }
        for s in 0...(text.count - probe.count) where text[s..<(s + probe.count)].elementsEqual(probe) { return true }
        return false
    }

    func testLeadingSpaceIsFreeAndAnAnswerNeedsContent() {
        let g = GroundedSpan("Ankara, 13 Ekim 1923'ten beri başkenttir.")
        let s0 = GroundedSpan.State()
        XCTAssertNil(g.advance(s0, bytes: Array(" ".utf8)), "white space alone cannot open an answer")
        let s1 = g.advance(s0, bytes: Array(" 13".utf8))
        XCTAssertNotNil(s1)
        XCTAssertNotNil(g.advance(s1!, bytes: Array(" Ekim".utf8)))
        XCTAssertNil(g.advance(s1!, bytes: Array(" Kasım".utf8)))
        XCTAssertNil(g.advance(s1!, bytes: Array("  Ekim".utf8)), "spacing inside the answer must match")
        XCTAssertNil(g.advance(s0, bytes: Array("ankara".utf8)), "case must match")
    }

    /// Greedy answers under the constraint, from `generate` and from the evaluator, are spans
    /// of their context; and where the free answer already was a span, the grounded one is the same.
    func testGroundedAnswersOfTheRealModelAreSpans() throws {
        let lm = try EvaluatorTests.model()
        let raw = try DatasetReader.read(TestPaths.repoRoot.appendingPathComponent("data/sample/tr_qa.json").path)
            + DatasetReader.read(TestPaths.repoRoot.appendingPathComponent("data/sample/zh_qa.json").path)
        let grounded = Evaluator(options: EvalOptions(maxExamples: raw.count, maxNewTokens: 16, batchSize: 8, grounded: true))
        let free = Evaluator(options: EvalOptions(maxExamples: raw.count, maxNewTokens: 16, batchSize: 8))
        let items = Array(try grounded.items(raw, model: lm).items.prefix(3))
            + Array(try grounded.items(Array(raw.suffix(12)), model: lm).items.prefix(3))
        let g = grounded.run(items, model: lm), f = free.run(items, model: lm)
        var changed = 0
        for (k, item) in items.enumerated() {
            let p = g[k].prediction!
            XCTAssertFalse(p.isEmpty, item.id)
            XCTAssertTrue(item.context!.contains(p), "\(item.id): \(p)")
            if item.context!.contains(f[k].prediction!) && !f[k].prediction!.isEmpty {
                XCTAssertEqual(p, f[k].prediction!, "\(item.id): an answer that is already a span is not changed")
            } else {
                changed += 1
            }
        }
        // The base model invents (or repeats the question) on most of these, so the constraint had work to do.
        XCTAssertGreaterThan(changed, 0)

        // generate() with the same constraint gives the evaluator's answer for the first question.
        let r = lm.generate(promptIds: items[0].promptIds,
                            options: GenerationOptions(maxTokens: 16, grounding: GroundedSpan(items[0].context!)))
        XCTAssertEqual(r.text.trimmingCharacters(in: .whitespacesAndNewlines), g[0].prediction)
    }
}
