import Foundation
import XCTest
@testable import LangTune

/// Helpers shared by the adapter, merge and export tests.
enum AdapterTestSupport {
    /// A fresh empty temporary folder, unique per call.
    static func tempDir(_ tag: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("langtune-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The tiny random Llama-3 model of TinyLlama3Tests (same generator and fixture),
    /// written to a folder of our own so the two tests never share files.
    static func tinyLlama3Folder() throws -> URL {
        let tokenizer = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        let fixture = try JSONDecoder().decode(TinyLlama3Tests.Fixture.self,
                                               from: Data(contentsOf: TestPaths.fixture("model/tiny_llama3.json")))
        let dir = try tempDir("tiny-llama3-adapters")
        var writer = SafetensorsWriter()
        for t in fixture.tensors {
            let v = TinyLlama3Tests.values(name: t.name, count: t.shape.reduce(1, *), scale: t.scale, center: t.center)
            try writer.addTensor(name: t.name, shape: t.shape, values: v, as: .f32)
        }
        try writer.write(to: dir.appendingPathComponent("model.safetensors").path)
        try JSONSerialization.data(withJSONObject: fixture.config.mapValues(\.any))
            .write(to: dir.appendingPathComponent("config.json"))
        try JSONSerialization.data(withJSONObject: fixture.tokenizer_config.mapValues(\.any))
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        try FileManager.default.copyItem(at: tokenizer, to: dir.appendingPathComponent("tokenizer.json"))
        return dir
    }

    /// A small model shape for file tests that need no weights.
    static let smallConfig = LlamaConfig(architecture: "llama", hiddenSize: 32, intermediateSize: 48, numLayers: 3,
                                         numHeads: 4, numKVHeads: 2, headDim: 8, vocabSize: 100, rmsNormEps: 1e-5,
                                         ropeTheta: 10000, maxPositionEmbeddings: 128, tieWordEmbeddings: true)

    /// A seeded adapter with PEFT's A and a random nonzero B.
    static func randomAdapter(_ model: LlamaConfig, rank: Int, alpha: Double, targets: [LoRATarget],
                              seed: UInt64, amplitude: Float = 0.05, rsLoRA: Bool = false) throws -> LoRAAdapter {
        let config = LoRAConfig(rank: rank, alpha: alpha, targets: targets, useRSLoRA: rsLoRA, baseModel: "test-model")
        let adapter = try LoRAAdapter(config: config, model: model, seed: seed)
        adapter.randomizeB(seed: seed &+ 1, amplitude: amplitude)
        return adapter
    }

    /// Logits at every position of `ids`.
    static func logits(_ model: LlamaModel, _ ids: [Int]) -> [Float] {
        model.forward(ids, cache: KVCache(config: model.config, capacity: ids.count), logits: .all)
    }

    /// max |a - b| / max |b|.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var diff = 0.0, scale = 0.0
        for (x, y) in zip(a, b) {
            diff = max(diff, abs(Double(x) - Double(y)))
            scale = max(scale, abs(Double(y)))
        }
        return diff / max(scale, 1e-30)
    }

    /// Writes a PEFT-style adapter folder from raw pieces (for bad-input tests).
    static func writePEFT(_ dir: URL, config: [String: Any], tensors: [(String, [Int], DType)], seed: UInt64 = 1) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
            .write(to: dir.appendingPathComponent("adapter_config.json"))
        var rng = SplitMix64(seed: seed)
        var st = SafetensorsWriter(metadata: ["format": "pt"])
        for (name, shape, dtype) in tensors {
            let v = (0..<shape.reduce(1, *)).map { _ in Float(rng.nextDouble() - 0.5) }
            try st.addTensor(name: name, shape: shape, values: v, as: dtype)
        }
        try st.write(to: dir.appendingPathComponent("adapter_model.safetensors").path)
    }

    /// A minimal valid PEFT config dictionary.
    static func peftConfig(r: Int = 2, alpha: Double = 4, targets: [String] = ["q_proj", "v_proj"]) -> [String: Any] {
        ["peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
         "target_modules": targets, "bias": "none", "fan_in_fan_out": false, "use_dora": false, "use_rslora": false]
    }
}

extension FloatBuffer {
    /// Bit patterns, for exact comparisons.
    var bits: [UInt32] { array.map(\.bitPattern) }
}
