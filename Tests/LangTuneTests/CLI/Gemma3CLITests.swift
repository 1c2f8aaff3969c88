import Foundation
import XCTest
@testable import LangTune

/// `langtune` on the real Gemma 3 GGUF: inspect, greedy chat generation equal to transformers'
/// (the parity fixture's first case), training with adapters generation loads, merging them into a
/// Hugging Face folder, and the clear refusal of what is not supported yet (that folder back to GGUF).
final class Gemma3CLITests: XCTestCase {
    func testInspectAndGreedyChatAnswer() throws {
        let model = try TestPaths.require(TestPaths.gemma3GGUF).path
        let inspect = try CLI.run(["inspect", model])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("gemma3, 18 layers"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("chat template     gemma"), inspect.stdout)

        struct Fixture: Decodable { var cases: [ParityCase] }
        let data = try Data(contentsOf: TestPaths.fixture("model/gemma3.json"))
        let c = try JSONDecoder().decode(Fixture.self, from: data).cases[0]
        let question = try XCTUnwrap(c.messages?.first?.content)
        let gen = try CLI.run(["generate", "--model", model, "--chat", "--prompt", question, "--temperature", "0",
                               "--max-tokens", "32", "--json"])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let line = try XCTUnwrap(gen.stdout.split(separator: "\n").last)
        let out = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(out["prompt_ids"] as? [Int], c.prompt_ids)
        let ids = try XCTUnwrap(out["ids"] as? [Int])
        // The CLI stops at <end_of_turn> without printing it; the reference includes the stop token.
        XCTAssertEqual(ids, Array(c.greedy_ids.prefix(ids.count)))
        XCTAssertGreaterThanOrEqual(ids.count, c.greedy_ids.count - 1)
    }

    /// `train` on Gemma 3 (LoRA over float32 copies, and QLoRA over the file's own K-quant blocks)
    /// writes adapters that `generate --adapter` loads and `merge` folds into a Hugging Face folder.
    func testTrainWritesAdaptersGenerateLoadsAndMergesToHF() throws {
        let model = try TestPaths.require(TestPaths.gemma3GGUF).path
        let sample = TestPaths.repoRoot.appendingPathComponent("data/sample/tr_qa.json").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gemma-train-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for method in ["lora", "qlora"] {
            let out = dir.appendingPathComponent(method)
            let train = try CLI.run(["train", "--model", model, "--data", sample, "--output", out.path, "--steps", "3",
                                     "--batch-size", "1", "--max-seq-len", "256", "--rank", "2", "--method", method,
                                     "--qlora-cache", "none", "--threads", "2"])
            XCTAssertEqual(train.status, 0, train.stderr)
            let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let last = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
            XCTAssertTrue((last["loss"] as? Double)?.isFinite ?? false, "\(method): \(last)")
            let gen = try CLI.run(["generate", "--model", model, "--adapter", out.path, "--prompt", "Merhaba", "--temperature", "0",
                                   "--max-tokens", "4"])
            XCTAssertEqual(gen.status, 0, gen.stderr)
        }
        // Merged into a Hugging Face folder, it generates what the GGUF + adapter generates; that folder cannot
        // become a GGUF (its tokenizer.json has no SentencePiece scores), and says so.
        let lora = dir.appendingPathComponent("lora").path, merged = dir.appendingPathComponent("merged").path
        let merge = try CLI.run(["merge", "--model", model, "--adapter", lora, "--output", merged])
        XCTAssertEqual(merge.status, 0, merge.stderr)
        let inspect = try CLI.run(["inspect", merged])
        XCTAssertTrue(inspect.stdout.contains("gemma3, 18 layers"), inspect.stdout)
        func greedy(_ args: [String]) throws -> [Int] {
            let r = try CLI.run(["generate"] + args + ["--chat", "--prompt", "Türkiye'nin başkenti neresidir?", "--max-tokens", "6", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let line = try XCTUnwrap(r.stdout.split(separator: "\n").last)
            let out = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try XCTUnwrap(out["ids"] as? [Int])
        }
        XCTAssertEqual(try greedy(["--model", merged]), try greedy(["--model", model, "--adapter", lora]))
        let back = try CLI.run(["merge", "--model", merged, "--adapter", lora, "--output", merged + ".gguf", "--format", "gguf"])
        XCTAssertNotEqual(back.status, 0)
        XCTAssertTrue(back.stderr.contains("a gemma3 GGUF export needs a GGUF source"), back.stderr)
    }
}
