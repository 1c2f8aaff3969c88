import ArgumentParser
import Foundation
import LangTune

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text, exactly as Hugging Face tokenizers would.",
        discussion: """
            Special-token text in the input (e.g. <|im_start|>) becomes that token. Like `tokenizer(text)` in transformers, BOS is added when the tokenizer says so; --no-special-tokens turns that off.

            With --decode the argument is a list of ids (spaces or commas between them) and the text they decode to is printed, as `tokenizer.decode(ids)` in transformers; --skip-special-tokens drops special tokens from it.

            --tokenizer reads a tokenizer.json (with the tokenizer_config.json beside it, if any) or only the vocabulary of a GGUF file.
            """)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.")
    var model: String = "default"
    @Option(help: "A tokenizer.json (or a GGUF file's vocabulary) to use instead of a model's tokenizer.")
    var tokenizer: String?
    @Flag(name: .customLong("no-special-tokens"), help: "Do not add BOS/EOS.")
    var noSpecialTokens = false
    @Flag(help: "Decode: the argument is ids; print their text.")
    var decode = false
    @Flag(name: .customLong("skip-special-tokens"), help: "With --decode, leave special tokens out of the text.")
    var skipSpecialTokens = false
    @Flag(help: "Print {\"ids\": [...]} (with --decode, {\"text\": \"...\"}).")
    var json = false
    @Argument(help: "The text to tokenize (with --decode, the ids).")
    var text: String

    struct Output: Encodable { var ids: [Int] }
    struct DecodeOutput: Encodable { var text: String }

    func run() throws {
        let tok: LangTune.Tokenizer
        if let path = tokenizer {
            if path.hasSuffix(".gguf") {
                tok = try LangTune.Tokenizer(ggufMetadata: try GGUFFile(path: path).metadata, file: path)
                return try output(tok)
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw FormatError(file: path, "cannot read the file")
            }
            let cfgPath = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json").path
            tok = try LangTune.Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: FileManager.default.contents(atPath: cfgPath), file: path)
        } else {
            tok = try LangTune.Tokenizer(source: try ModelFiles.load(try LangTuneHome.resolve(model)).tokenizer)
        }
        try output(tok)
    }

    private func output(_ tok: LangTune.Tokenizer) throws {
        if decode {
            var ids: [Int] = []
            for field in text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" }) {
                guard let id = Int(field), id >= 0, id < tok.vocabSize else {
                    throw ValidationError("--decode: \(field.debugDescription) is not a token id (0..<\(tok.vocabSize))")
                }
                ids.append(id)
            }
            let decoded = tok.decode(ids, skipSpecialTokens: skipSpecialTokens)
            if json { try printJSON(DecodeOutput(text: decoded)) } else { print(decoded) }
            return
        }
        let ids = tok.encode(text, addSpecialTokens: !noSpecialTokens)
        if json { try printJSON(Output(ids: ids)) } else { print(ids.map(String.init).joined(separator: " ")) }
    }
}
