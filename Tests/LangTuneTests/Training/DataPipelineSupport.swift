import Foundation
import XCTest
@testable import LangTune

/// SmolLM2's real tokenizer and chat template (loaded once; not the model).
struct SmolLM2Text: Sendable {
    let tokenizer: Tokenizer
    let template: ChatTemplate

    private static let loaded: Result<SmolLM2Text, any Error> = Result {
        let files = try ModelFiles.load(TestPaths.smolLM2GGUF.path)
        return SmolLM2Text(tokenizer: try Tokenizer(source: files.tokenizer),
                           template: try ChatTemplate(XCTUnwrap(files.chatTemplate)))
    }

    static func load() throws -> SmolLM2Text {
        _ = try TestPaths.require(TestPaths.smolLM2GGUF)
        return try loaded.get()
    }

    func builder(_ options: TrainingDataOptions = TrainingDataOptions()) -> TrainingDataBuilder {
        TrainingDataBuilder(tokenizer: tokenizer, template: template, options: options)
    }

    /// What `LanguageModel.promptIds` gives: render with the generation prompt, encode without special tokens.
    func promptIds(_ messages: [ChatMessage]) throws -> [Int32] {
        let text = try template.render(messages: messages, addGenerationPrompt: true,
                                       bosToken: tokenizer.bosToken ?? "", eosToken: tokenizer.eosToken ?? "")
        return tokenizer.encode(text, addSpecialTokens: false).map { Int32($0) }
    }

    func decode(_ ids: [Int32]) -> String { tokenizer.decode(ids.map { Int($0) }) }

    /// Decoded text of the labelled positions.
    func labelledText(_ e: TokenizedExample) -> String {
        decode(zip(e.ids, e.labels).filter { $0.1 != TokenizedExample.ignoreIndex }.map(\.0))
    }

    /// Ids before the first label.
    func promptPart(_ e: TokenizedExample) -> [Int32] {
        Array(e.ids.prefix(e.labels.firstIndex(where: { $0 != TokenizedExample.ignoreIndex }) ?? e.ids.count))
    }
}

/// A scratch directory removed after the test.
final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `text` to `name` and returns its path.
    func write(_ name: String, _ text: String) throws -> String {
        let u = url.appendingPathComponent(name)
        try Data(text.utf8).write(to: u)
        return u.path
    }

    /// A SQuAD file of `paragraphs` (context, [(question, answer, answer_start or nil for "find it")]).
    func squad(_ name: String, _ paragraphs: [(String, [(String, String, Int?)])]) throws -> String {
        var data: [[String: Any]] = []
        for (pi, (context, qas)) in paragraphs.enumerated() {
            let q: [[String: Any]] = qas.enumerated().map { qi, qa in
                let start = qa.2 ?? Array(context.unicodeScalars).firstRange(of: Array(qa.1.unicodeScalars))!.lowerBound
                return ["id": "p\(pi)q\(qi)", "question": qa.0, "answers": [["text": qa.1, "answer_start": start]]]
            }
            data.append(["title": "t\(pi)", "paragraphs": [["context": context, "qas": q]]])
        }
        let json = try JSONSerialization.data(withJSONObject: ["data": data], options: [.sortedKeys])
        return try write(name, String(decoding: json, as: UTF8.self))
    }
}

/// The message of a `DatasetError` thrown by `body`, or a failure.
func datasetErrorMessage(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
        try body()
        XCTFail("expected a DatasetError", file: file, line: line)
    } catch let e as DatasetError {
        return e.description
    } catch {
        XCTFail("expected a DatasetError, got \(type(of: error)): \(error)", file: file, line: line)
    }
    return ""
}
