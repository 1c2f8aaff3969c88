import ArgumentParser
import Foundation
import LangTune

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with a model in your terminal; answers stream as they are generated.",
        discussion: """
            Each turn goes through the model's own chat template; earlier turns stay
            in the KV cache, so only the new message is processed.
            Commands: /reset starts a new conversation, /exit (or end of input) quits.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "System message.")
    var system: String?
    @Option(name: .customLong("max-tokens"), help: "Most new tokens per answer.")
    var maxTokens: Int = 256
    @OptionGroup var sampling: SamplingFlags

    func run() throws {
        let lm = try modelOptions.load()
        guard lm.template != nil else { throw ValidationError("\(modelOptions.spec) has no chat template") }
        note("LangTune chat — \(modelOptions.spec). /reset for a new conversation, /exit to quit.")
        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        let cache = KVCache(config: lm.model.config)
        var cachedIds: [Int] = []
        while true {
            FileHandle.standardError.write(Data("\n> ".utf8))
            guard let line = readLine() else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input == "/exit" { break }
            if input == "/reset" {
                messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
                cache.reset()
                cachedIds = []
                note("(new conversation)")
                continue
            }
            if input.isEmpty { continue }
            messages.append(ChatMessage(role: "user", content: input))
            let ids = lm.tokenizer.encode(try lm.render(messages, addGenerationPrompt: true), addSpecialTokens: false)
            let opts = GenerationOptions(maxTokens: maxTokens, sampling: sampling.options, stopStrings: sampling.stop)
            let r = lm.generate(promptIds: ids, options: opts, cache: cache, cachedIds: cachedIds) { piece in
                FileHandle.standardOutput.write(Data(piece.utf8))
            }
            print("")
            cachedIds = ids + r.ids
            // The cache now holds the prompt and the answer (the last token's keys
            // are added only when it is fed, so drop it from what we claim).
            cachedIds = Array(cachedIds.prefix(cache.length))
            messages.append(ChatMessage(role: "assistant", content: r.text))
        }
    }
}
