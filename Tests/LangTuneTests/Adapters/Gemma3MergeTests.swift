import Foundation
import XCTest
@testable import LangTune

/// An adapter merged into the real Gemma 3 GGUF and written as GGUF loads back as a model with the
/// adapted model's logits; a Hugging Face export is refused.
final class Gemma3MergeTests: XCTestCase {
    func testMergedGGUFGivesTheAdaptedLogits() throws {
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

        XCTAssertThrowsError(try ModelExporter(files: files, adapter: adapter).writeHF(to: out.path + ".hf", dtype: .f32)) { error in
            XCTAssertEqual((error as? FormatError)?.problem,
                           "a Hugging Face export is not supported for gemma3 models yet; merge to GGUF (--format gguf)")
        }
    }
}
