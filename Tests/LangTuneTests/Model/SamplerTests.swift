import XCTest
@testable import LangTune

final class SamplerTests: XCTestCase {
    func testGreedyIsArgmaxWithFirstTieWins() {
        var s = Sampler(SamplingOptions())
        XCTAssertEqual(s.next(logits: [0.1, 3, -2, 3], context: []), 1)
    }

    func testRepetitionPenaltyFollowsTransformers() {
        // transformers: score < 0 ? score * p : score / p, for tokens in the context.
        var s = Sampler(SamplingOptions(repetitionPenalty: 2))
        // Token 0 (2.0 -> 1.0) loses to token 1 (1.5); token 2 (-1 -> -2) stays low.
        XCTAssertEqual(s.next(logits: [2.0, 1.5, -1.0], context: [0, 2, 0]), 1)
        var none = Sampler(SamplingOptions())
        XCTAssertEqual(none.next(logits: [2.0, 1.5, -1.0], context: [0]), 0)
    }

    func testTopKOneAndTinyTopPAreGreedy() {
        let logits: [Float] = [0.5, 0.2, 0.9, 0.1]
        for opts in [SamplingOptions(temperature: 1.5, topK: 1, seed: 7), SamplingOptions(temperature: 1.5, topP: 0.01, seed: 7)] {
            var s = Sampler(opts)
            for _ in 0..<50 { XCTAssertEqual(s.next(logits: logits, context: []), 2) }
        }
    }

    func testMinPDropsUnlikelyTokens() {
        // probabilities ∝ [1, 0.5, 0.01]: min-p 0.1 removes token 2 only.
        let logits: [Float] = [0, log(0.5), log(0.01)]
        var s = Sampler(SamplingOptions(temperature: 1, minP: 0.1, seed: 3))
        var seen = Set<Int>()
        for _ in 0..<400 { seen.insert(s.next(logits: logits, context: [])) }
        XCTAssertEqual(seen, [0, 1])
    }

    func testSamplingFrequenciesAndSeeds() {
        // p(1) = 3/4 at temperature 1; at temperature 0.5 it is 9/10.
        let logits: [Float] = [0, log(3)]
        for (t, want) in [(1.0, 0.75), (0.5, 0.9)] {
            var s = Sampler(SamplingOptions(temperature: t, seed: 42))
            let n = 20000
            let ones = (0..<n).filter { _ in s.next(logits: logits, context: []) == 1 }.count
            XCTAssertEqual(Double(ones) / Double(n), want, accuracy: 0.015, "temperature \(t)")
        }
        var a = Sampler(SamplingOptions(temperature: 1, seed: 9)), b = Sampler(SamplingOptions(temperature: 1, seed: 9))
        let wide = (0..<100).map { Float($0 % 7) * 0.3 }
        XCTAssertEqual((0..<200).map { _ in a.next(logits: wide, context: []) }, (0..<200).map { _ in b.next(logits: wide, context: []) })
    }

    func testStopStringHoldBack() {
        XCTAssertEqual(String("Hello <|e"[..<safeEnd("Hello <|e", ["<|end|>"])]), "Hello ")
        XCTAssertEqual(String("Hello"[..<safeEnd("Hello", ["<|end|>"])]), "Hello")
    }

    func testUtf8StreamHoldsBackSplitCharacters() {
        var s = Utf8Stream()
        let bytes = Array("aç中😀".utf8)
        var out = ""
        for b in bytes { out += s.append([b]) }
        out += s.flush()
        XCTAssertEqual(out, "aç中😀")
        var t = Utf8Stream()
        // "a" + "ç" (2 bytes) are complete; the first byte of "中" waits.
        XCTAssertEqual(t.append(Array(bytes[0..<4])), "aç")
        XCTAssertEqual(t.append(Array(bytes[4..<6])), "中")
    }
}
