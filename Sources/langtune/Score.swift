import ArgumentParser
import Foundation
import LangTune

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Teacher-forced pass over a text: its token log-probabilities and the last position's top logits.",
        discussion: "With --chat the text is one user message rendered with the chat template and a generation prompt.")

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Render TEXT as a user message with the model's chat template.")
    var chat = false
    @Option(help: "How many of the last position's largest logits to report.")
    var top: Int = 10
    @Flag(help: "Print JSON: {\"ids\", \"mean_logprob\", \"last_top\": [[id, logit], ...]}.")
    var json = false
    @Argument(help: "The text to score.")
    var text: String

    func run() throws {
        let lm = try modelOptions.load()
        let ids = try lm.promptIds(text, chat: chat)
        guard !ids.isEmpty else { throw ValidationError("the text has no tokens") }
        let r = lm.score(ids, top: top)
        if json { try printJSON(r); return }
        print("tokens: \(ids.count), mean log-probability: \(r.meanLogprob), perplexity: \(exp(-r.meanLogprob))")
        for (id, logit) in r.lastTop {
            print(String(format: "%8d %10.4f  %@", id, logit, lm.tokenizer.decode([id]).debugDescription))
        }
    }
}
