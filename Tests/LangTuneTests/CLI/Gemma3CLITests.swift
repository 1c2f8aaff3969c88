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
        // Merged into a Hugging Face folder, it generates what the GGUF + adapter generates; that folder becomes a
        // GGUF again (a zero adapter), its vocabulary as Google's GGUF holds it.
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
        let zero = dir.appendingPathComponent("zero").path
        let initZero = try CLI.run(["adapter-init", "--model", merged, "--output", zero, "--rank", "2"])
        XCTAssertEqual(initZero.status, 0, initZero.stderr)
        let back = try CLI.run(["merge", "--model", merged, "--adapter", zero, "--output", merged + ".gguf", "--format", "gguf"])
        XCTAssertEqual(back.status, 0, back.stderr)
        try assertSameVocabulary(original: model, exported: merged + ".gguf")
        XCTAssertEqual(try greedy(["--model", merged + ".gguf"]).prefix(2), try greedy(["--model", merged]).prefix(2))
    }

    /// The exported vocabulary against Google's: tokens and types equal, scores equal except the normal
    /// tokens', which fall with the id in both (the order llama.cpp merges in), and the same ids.
    private func assertSameVocabulary(original: String, exported: String) throws {
        let a = try GGUFFile(path: original).metadata, b = try GGUFFile(path: exported).metadata
        func strings(_ m: [String: GGUFValue], _ k: String) -> [String] { (m[k]?.array ?? []).map { $0.string ?? "?" } }
        func numbers(_ m: [String: GGUFValue], _ k: String) -> [Double] { (m[k]?.array ?? []).map { $0.double ?? .nan } }
        let tokens = strings(a, "tokenizer.ggml.tokens")
        XCTAssertEqual(tokens.count, 262_144)
        XCTAssertEqual(strings(b, "tokenizer.ggml.tokens"), tokens)
        let types = numbers(a, "tokenizer.ggml.token_type")
        XCTAssertEqual(numbers(b, "tokenizer.ggml.token_type"), types)
        let sa = numbers(a, "tokenizer.ggml.scores"), sb = numbers(b, "tokenizer.ggml.scores")
        XCTAssertEqual(sb.count, sa.count)
        var previous: (Double, Double)?
        var differing = 0
        for id in 0..<min(sa.count, sb.count, types.count) {
            if types[id] != 1 {
                if sa[id] != sb[id] { differing += 1 }
                continue
            }
            if let (pa, pb) = previous { if !(sa[id] < pa && sb[id] < pb) { differing += 1 } }
            previous = (sa[id], sb[id])
        }
        XCTAssertEqual(differing, 0, "scores out of order or different")
        for key in ["tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                    "tokenizer.ggml.add_space_prefix", "gemma3.attention.sliding_window"] {
            XCTAssertEqual(b[key], a[key], key)
        }
        let ta = try Tokenizer(ggufMetadata: a, file: original), tb = try Tokenizer(ggufMetadata: b, file: exported)
        for text in ["Türkiye'nin başkenti neresidir?\n\n\n  a   b", "<start_of_turn>user\n中国的首都是哪里？<end_of_turn>", "x\t\ty  z 🤗"] {
            XCTAssertEqual(tb.encode(text, addSpecialTokens: true), ta.encode(text, addSpecialTokens: true), text)
        }
    }
}
