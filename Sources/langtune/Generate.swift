import ArgumentParser
import Foundation
import LangTune

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt, streaming the answer.",
        discussion: """
            With --chat the prompt is a user message in the model's chat template.
            Temperature 0 (the default) is greedy decoding.

            Example:
              langtune generate --model default --chat --prompt "中国的首都是哪里？" --max-tokens 64
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Render the prompt as a user message with the model's chat template.")
    var chat = false
    @Option(help: "System message (with --chat).")
    var system: String?
    @Option(help: "The prompt text.")
    var prompt: String
    @Option(name: .customLong("max-tokens"), help: "Most new tokens to generate.")
    var maxTokens: Int = 128
    @OptionGroup var sampling: SamplingFlags
    @Flag(help: "Print {\"prompt_ids\", \"ids\", \"text\", ...} instead of streaming.")
    var json = false

    struct Output: Encodable {
        var prompt_ids: [Int]
        var ids: [Int]
        var text: String
        var finish_reason: String
        var prompt_tokens_per_second: Double
        var generate_tokens_per_second: Double
    }

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be >= 0") }
    }

    func run() throws {
        let lm = try modelOptions.load()
        let ids = try lm.promptIds(prompt, chat: chat, system: system)
        guard !ids.isEmpty else { throw ValidationError("the prompt has no tokens") }
        let opts = GenerationOptions(maxTokens: maxTokens, sampling: sampling.options, stopStrings: sampling.stop)
        let r = lm.generate(promptIds: ids, options: opts, onText: json ? nil : { piece in
            FileHandle.standardOutput.write(Data(piece.utf8))
        })
        if json {
            try printJSON(Output(prompt_ids: ids, ids: r.ids, text: r.text, finish_reason: r.finishReason.rawValue,
                                 prompt_tokens_per_second: Double(ids.count) / max(r.promptSeconds, 1e-9),
                                 generate_tokens_per_second: Double(max(r.ids.count - 1, 0)) / max(r.generateSeconds, 1e-9)))
        } else {
            print("")
            note(String(format: "[%d prompt tokens at %.1f tok/s, %d generated at %.1f tok/s, %@]",
                        ids.count, Double(ids.count) / max(r.promptSeconds, 1e-9), r.ids.count,
                        Double(max(r.ids.count - 1, 0)) / max(r.generateSeconds, 1e-9), r.finishReason.rawValue))
        }
    }
}
