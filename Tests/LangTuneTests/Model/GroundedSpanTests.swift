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

    /// Spans start at word starts: a letter or digit after a non-letter, any Chinese character, or
    /// punctuation; checked against a search over the text's characters, with the answers cut into
    /// random byte pieces (a character split across tokens).
    func testSpansStartAtWordStarts() {
        let g = GroundedSpan("Güneydoğu Anadolu Bölgesi'nde yer alır; 北京是中华人民共和国的首都 (2015年).")
        let s0 = GroundedSpan.State()
        XCTAssertNotNil(g.advance(s0, bytes: Array("Bölgesi'nde yer".utf8)))
        XCTAssertNil(g.advance(s0, bytes: Array("ölgesi'nde yer".utf8)), "a span cannot start inside a word")
        XCTAssertNotNil(g.advance(s0, bytes: Array("nde yer".utf8)), "after an apostrophe a word starts")
        XCTAssertNotNil(g.advance(s0, bytes: Array("人民共和国".utf8)), "any Chinese character starts a span")
        XCTAssertNotNil(g.advance(s0, bytes: Array("2015年".utf8)))
        XCTAssertNil(g.advance(s0, bytes: Array("015年".utf8)))
        XCTAssertNil(g.advance(s0, bytes: [0xC3]), "the first byte of ü or ö, found only inside words here, cannot open an answer")
        XCTAssertNotNil(g.advance(s0, bytes: Array("(2015年)".utf8)), "punctuation may open a span")
        let bytes = Array("中华".utf8)
        let half = g.advance(s0, bytes: Array(bytes[0..<2]))
        XCTAssertNotNil(half)
        XCTAssertFalse(half!.canEnd, "half a character cannot end an answer")
        XCTAssertTrue(g.advance(half!, bytes: Array(bytes[2...]))!.canEnd)
        XCTAssertNil(g.advance(s0, bytes: [0xE4, 0xB8]).flatMap { g.advance($0, bytes: [0x41]) }, "a broken character leaves the text")

        var rng = SystemRandomNumberGenerator()
        let pieces = ["a", "b", "ab", " ", "'", "ç", "北", "京", "1", "."]
        for _ in 0..<300 {
            let text = (0..<Int.random(in: 1...12, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let span = GroundedSpan(text)
            let scalars = Array(text.unicodeScalars)
            // Byte offsets where a span may start: a word start, or any character that is not part of a word.
            let textBytes = Array(text.utf8)
            var starts: [Int] = [], offset = 0
            for (k, c) in scalars.enumerated() {
                let kind = WordStart.kind(c)
                if kind == .other || WordStart.starts(kind, after: k == 0 ? .none : WordStart.kind(scalars[k - 1])) { starts.append(offset) }
                offset += String(c).utf8.count
            }
            for _ in 0..<20 {
                let probe: [Unicode.Scalar]
                if Bool.random(using: &rng) {
                    let s = Int.random(in: 0..<scalars.count, using: &rng)
                    probe = Array(scalars[s..<min(scalars.count, s + Int.random(in: 1...5, using: &rng))])
                } else {
                    probe = Array((0..<Int.random(in: 1...4, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined().unicodeScalars)
                }
                guard let first = probe.firstIndex(where: { !($0 == " ") }) else { continue }
                let content = Array(probe[first...])
                // Reference: an occurrence of the probe's content whose first character starts a word there.
                var expected = false
                if content.count <= scalars.count {
                    for s in 0...(scalars.count - content.count) where Array(scalars[s..<(s + content.count)]) == content {
                        let k = WordStart.kind(content[0])
                        if k == .other || WordStart.starts(k, after: s == 0 ? .none : WordStart.kind(scalars[s - 1])) { expected = true }
                    }
                }
                // The content's bytes fed in random pieces (white space alone cannot open an answer:
                // testLeadingSpaceIsFreeAndAnAnswerNeedsContent). After every piece the answer so far
                // is accepted exactly when some span starting at a word start begins with its bytes.
                let all = Array(String(String.UnicodeScalarView(content)).utf8)
                var state: GroundedSpan.State? = s0, i = 0
                while i < all.count, let st = state {
                    let n = Int.random(in: 1...3, using: &rng)
                    let fed = Array(all[0..<min(all.count, i + n)])
                    state = span.advance(st, bytes: Array(all[i..<min(all.count, i + n)]))
                    XCTAssertEqual(state != nil, starts.contains { textBytes[$0...].starts(with: fed) },
                                   "text \(text) answer bytes \(fed)")
                    i += n
                }
                XCTAssertEqual(state?.canEnd ?? false, expected, "text \(text) probe \(String(String.UnicodeScalarView(probe)))")
            }
        }
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
            XCTAssertTrue(GroundedSpan(item.context!).advance(GroundedSpan.State(), bytes: Array(p.utf8))?.canEnd == true,
                          "\(item.id): \(p) is not a span starting at a word start")
            XCTAssertTrue(item.context!.contains(p), "\(item.id): \(p)")
            let freeAnswer = f[k].prediction!
            if !freeAnswer.isEmpty, GroundedSpan(item.context!).advance(GroundedSpan.State(), bytes: Array(freeAnswer.utf8))?.canEnd == true {
                XCTAssertEqual(p, freeAnswer, "\(item.id): an answer that is already a span is not changed")
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
