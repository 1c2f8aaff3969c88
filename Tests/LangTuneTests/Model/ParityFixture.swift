import Foundation
import XCTest
@testable import LangTune

/// One prompt of a model-parity fixture written by Tests/Reference (transformers, float32).
struct ParityCase: Decodable {
    var name: String
    var messages: [ChatMessage]?
    var text: String?
    var rendered: String?
    var prompt_ids: [Int]
    var last_top10: [[Double]]
    var greedy_ids: [Int]
    var greedy_top2_gap: [Double]
    var mean_logprob: Double
}

/// Checks LangTune against one reference case: prompt ids, the top-10 logits at
/// the last prompt position (1e-3 relative), the argmax, the greedy
/// continuation (a divergence is accepted only where the reference's top two
/// logits are within 1e-3) and the mean log-probability of the prompt.
func assertMatchesReference(_ lm: LanguageModel, _ c: ParityCase, eos: Set<Int>,
                            file: StaticString = #filePath, line: UInt = #line) throws {
    if let messages = c.messages {
        let rendered = try lm.render(messages, addGenerationPrompt: true)
        if let want = c.rendered {
            XCTAssertEqual(Array(rendered.utf8), Array(want.utf8), "\(c.name): rendered prompt", file: file, line: line)
        }
        XCTAssertEqual(lm.tokenizer.encode(rendered, addSpecialTokens: false), c.prompt_ids, "\(c.name): prompt ids", file: file, line: line)
    } else if let text = c.text {
        XCTAssertEqual(lm.tokenizer.encode(text, addSpecialTokens: true), c.prompt_ids, "\(c.name): prompt ids", file: file, line: line)
    }
    assertLogitsMatchReference(lm.model, c, eos: eos, file: file, line: line)
}

/// The model half of `assertMatchesReference`: from the reference's prompt ids on.
func assertLogitsMatchReference(_ model: LlamaModel, _ c: ParityCase, eos: Set<Int>,
                                file: StaticString = #filePath, line: UInt = #line) {
    let score = model.score(c.prompt_ids, top: 10)
    XCTAssertEqual(score.meanLogprob, c.mean_logprob, accuracy: 1e-4 * max(1, abs(c.mean_logprob)),
                   "\(c.name): mean log-probability", file: file, line: line)

    let cache = KVCache(config: model.config)
    var logits = model.forward(c.prompt_ids, cache: cache, logits: .last)
    for pair in c.last_top10 {
        let id = Int(pair[0]), want = pair[1]
        let got = Double(logits[id])
        XCTAssertLessThanOrEqual(abs(got - want), 1e-3 * max(abs(want), 1),
                                 "\(c.name): logit of token \(id): got \(got), want \(want)", file: file, line: line)
    }
    XCTAssertEqual(Sampler.argmax(logits), Int(c.last_top10[0][0]), "\(c.name): argmax", file: file, line: line)

    for (step, want) in c.greedy_ids.enumerated() {
        let got = Sampler.argmax(logits)
        if got != want {
            XCTAssertLessThanOrEqual(c.greedy_top2_gap[step], 1e-3,
                "\(c.name): greedy token \(step) is \(got), reference \(want) (reference top-2 gap \(c.greedy_top2_gap[step]))",
                file: file, line: line)
            return
        }
        if eos.contains(got) { break }
        logits = model.forward([got], cache: cache, logits: .last)
    }
}
