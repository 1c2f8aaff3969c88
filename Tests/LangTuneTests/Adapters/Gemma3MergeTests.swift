import Foundation
import XCTest
@testable import LangTune

/// An adapter merged into the real Gemma 3 GGUF and written as GGUF, or as a Hugging Face folder,
/// loads back as a model with the adapted model's logits.
final class Gemma3MergeTests: XCTestCase {
    func testMergedGGUFAndHFFolderGiveTheAdaptedLogits() throws {
        let files = try ModelFiles.load(TestPaths.require(TestPaths.gemma3GGUF).path)
        let adapter = try LoRAAdapter(config: LoRAConfig(rank: 4, alpha: 8), model: files.config, seed: 5)
        var rng = SplitMix64(seed: 6)
        for l in adapter.layers {
            for t in LoRATarget.allCases { if let w = l[t] { for i in 0..<w.b.count { w.b.pointer[i] = Float(rng.nextDouble() - 0.5) * 0.02 } } }
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("gemma-merged-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: out) }
        try ModelExporter(files: files, adapter: adapter, threads: Threads(2)).writeGGUF(to: out.path, dtype: .f32)

        let merged = try ModelFiles.load(out.path)
        XCTAssertEqual(merged.config.architecture, "gemma3")
        XCTAssertEqual(merged.config.gemma3, files.config.gemma3)
        XCTAssertEqual([merged.config.numLayers, merged.config.headDim, merged.config.vocabSize],
                       [files.config.numLayers, files.config.headDim, files.config.vocabSize])
        let tokens = [2, 100, 2000, 30000, 5, 77, 4000]
        let original = try LlamaModel(files: files, backend: CPUBackend(threads: Threads(2)))
        let base = original.forward(tokens, cache: KVCache(config: files.config), logits: .all)
        original.adapter = adapter
        let adapted = original.forward(tokens, cache: KVCache(config: files.config), logits: .all)
        let fromFile = try LlamaModel(files: merged, backend: CPUBackend(threads: Threads(2)))
            .forward(tokens, cache: KVCache(config: merged.config), logits: .all)
        func worst(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) / max(1, abs($0)) }.max()! }
        XCTAssertLessThan(worst(adapted, fromFile), 1e-3)
        XCTAssertGreaterThan(worst(adapted, base), 1e-2, "the adapter changes the logits")


        // The same merge as a Hugging Face folder: w = multiplier - 1 on the norms, the tokenizer as
        // transformers builds it from the GGUF; it loads back to the same config and logits.
        let folder = out.path + ".hf"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ModelExporter(files: files, adapter: adapter, threads: Threads(2)).writeHF(to: folder, dtype: .f32)
        let hf = try ModelFiles.load(folder)
        XCTAssertEqual(hf.config, files.config)
        let hfLogits = try LlamaModel(files: hf, backend: CPUBackend(threads: Threads(2)))
            .forward(tokens, cache: KVCache(config: hf.config), logits: .all)
        XCTAssertLessThan(worst(adapted, hfLogits), 1e-4)
        let stored = try SafetensorsCheckpoint(path: folder + "/model.safetensors")
        let norm = try dequantize(try XCTUnwrap(stored.tensors["model.layers.0.input_layernorm.weight"]))
        let multiplier = try dequantize(try XCTUnwrap(files.tensors["model.layers.0.input_layernorm.weight"]))
        XCTAssertEqual(norm.prefix(4).map { $0 + 1 }, multiplier.prefix(4).map { $0 })
        XCTAssertNil(stored.tensors["lm_head.weight"], "tied embeddings are stored once")
        let template = try String(contentsOfFile: folder + "/tokenizer_config.json", encoding: .utf8)
        XCTAssertTrue(template.contains("<start_of_turn>"), "the chat template travels in tokenizer_config.json")

        // A config.json that lists only <eos> (as transformers saves Gemma 3 from its GGUF) still stops at <end_of_turn>.
        for name in ["config.json", "generation_config.json"] {
            let path = folder + "/" + name
            var o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            o["eos_token_id"] = 1
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: path))
        }
        let lm = try LanguageModel(folder)
        XCTAssertEqual(lm.files.config.eosTokenIds, [1])
        XCTAssertEqual(lm.stopTokenIds, [1, 106])
    }
}
