import ArgumentParser
import Foundation
import LangTune

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text, exactly as Hugging Face tokenizers would.",
        discussion: """
            Special-token text in the input (e.g. <|im_start|>) becomes that token.
            Like `tokenizer(text)` in transformers, BOS is added when the tokenizer
            says so; --no-special-tokens turns that off.
            """)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.")
    var model: String = "default"
    @Option(help: "A tokenizer.json to use instead of a model's tokenizer.")
    var tokenizer: String?
    @Flag(name: .customLong("no-special-tokens"), help: "Do not add BOS/EOS.")
    var noSpecialTokens = false
    @Flag(help: "Print {\"ids\": [...]}.")
    var json = false
    @Argument(help: "The text to tokenize.")
    var text: String

    struct Output: Encodable { var ids: [Int] }

    func run() throws {
        let tok: LangTune.Tokenizer
        if let path = tokenizer {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw FormatError(file: path, "cannot read the file")
            }
            let cfgPath = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json").path
            tok = try LangTune.Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: FileManager.default.contents(atPath: cfgPath), file: path)
        } else {
            tok = try LangTune.Tokenizer(source: try ModelFiles.load(try LangTuneHome.resolve(model)).tokenizer)
        }
        let ids = tok.encode(text, addSpecialTokens: !noSpecialTokens)
        if json { try printJSON(Output(ids: ids)) } else { print(ids.map(String.init).joined(separator: " ")) }
    }
}
