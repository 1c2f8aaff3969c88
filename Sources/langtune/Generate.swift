import ArgumentParser
import Foundation
import LangTune

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt, streaming the answer.",
        discussion: """
            With --chat the prompt is a user message in the model's chat template. Temperature 0 (the default) is greedy decoding.

            With --context the prompt is a question about that passage, asked with the same built-in prompt (per language) and chat template as `train` uses for SQuAD data. Add --grounded to keep the answer to a span of the passage: each token must keep the answer a substring of the context that starts at a word start (any character in Chinese), so the model can only point, never invent (extractive Q&A).

            Examples:
              langtune generate --model default --chat --prompt "中国的首都是哪里？" --max-tokens 64
              langtune generate --model default --adapter runs/tr --context @passage.txt --prompt "Ankara ne zamandan beri başkenttir?" --grounded
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Render the prompt as a user message with the model's chat template.")
    var chat = false
    @Option(help: "System message (with --chat).")
    var system: String?
    @Option(help: "The prompt text.")
    var prompt: String
    @Option(help: ArgumentHelp("A passage the prompt asks about (@FILE reads it from a file); implies --chat.", valueName: "text|@file"))
    var context: String?
    @Flag(help: "With --context: the answer must be a span of the passage.")
    var grounded = false
    @Option(help: "With --context: tr, zh or en for the built-in question prompt (default: detect).")
    var language: String?
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
        if grounded && context == nil { throw ValidationError("--grounded needs --context (the passage answers must come from)") }
    }

    /// The passage of --context: the text itself, or the file after "@".
    func passage() throws -> String? {
        guard let context else { return nil }
        guard context.hasPrefix("@") else { return context }
        let path = String(context.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(path): cannot read the --context file") }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(path): the --context file is not UTF-8 text") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func run() throws {
        let lm = try modelOptions.load()
        let passage = try passage()
        var text = prompt
        if let passage {
            let lang = language ?? QAPrompt.detectLanguage(prompt + "\n" + passage)
            guard let template = QAPrompt.defaultTemplate(language: lang) else {
                throw ValidationError("no built-in question prompt for language \"\(lang)\" (built in: \(QAPrompt.languages.joined(separator: ", ")))")
            }
            text = QAPrompt.fill(template, context: passage, question: prompt)
        }
        let ids = try lm.promptIds(text, chat: chat || passage != nil, system: system)
        guard !ids.isEmpty else { throw ValidationError("the prompt has no tokens") }
        let opts = GenerationOptions(maxTokens: maxTokens, sampling: sampling.options, stopStrings: sampling.stop,
                                     grounding: grounded ? passage.map(GroundedSpan.init) : nil)
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
