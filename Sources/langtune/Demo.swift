import ArgumentParser
import Foundation
import LangTune

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The default job: ask the model questions in Turkish and Chinese and show its answers.",
        discussion: "Shows how an English-centric model answers in other languages before any fine-tuning.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("max-tokens"), help: "Most new tokens per answer.")
    var maxTokens: Int = 48

    static let questions = [
        ("en", "What is the capital of Turkey?"),
        ("tr", "Türkiye'nin başkenti neresidir?"),
        ("tr", "İstanbul hangi iki kıtayı birbirine bağlar?"),
        ("zh", "中国的首都是哪里？"),
        ("zh", "长城有多长？"),
    ]

    func run() throws {
        let lm = try modelOptions.load()
        note("model: \(lm.files.path)\nbackend: \(lm.model.backend.name)\n")
        for (lang, q) in Self.questions {
            print("[\(lang)] \(q)")
            FileHandle.standardOutput.write(Data("  → ".utf8))
            let ids = try lm.promptIds(q, chat: true)
            let r = lm.generate(promptIds: ids, options: GenerationOptions(maxTokens: maxTokens)) { piece in
                FileHandle.standardOutput.write(Data(piece.replacingOccurrences(of: "\n", with: "\n    ").utf8))
            }
            print(String(format: "\n  (%d tokens, %.1f tok/s)\n", r.ids.count,
                         Double(max(r.ids.count - 1, 0)) / max(r.generateSeconds, 1e-9)))
        }
    }
}
