import Foundation
import XCTest
@testable import LangTune

/// config.json for every architecture reads back as the same LlamaConfig, and a Qwen2
/// model (q/k/v biases, rotate-half RoPE: no q/k permutation in GGUF) survives export.
final class ExportArchitectureTests: XCTestCase {
    typealias S = AdapterTestSupport

    func testConfigJSONReadsBackForEveryArchitecture() throws {
        let configs = [
            LlamaConfig(architecture: "llama", hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 4,
                        numKVHeads: 2, headDim: 16, vocabSize: 128256, rmsNormEps: 1e-5, ropeTheta: 500000,
                        ropeScaling: RopeScaling(type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4,
                                                 originalMaxPositionEmbeddings: 8192),
                        maxPositionEmbeddings: 131072, tieWordEmbeddings: false, bosTokenId: 128000,
                        eosTokenIds: [128001, 128009]),
            LlamaConfig(architecture: "qwen2", hiddenSize: 896, intermediateSize: 4864, numLayers: 24, numHeads: 14,
                        numKVHeads: 2, vocabSize: 151936, rmsNormEps: 1e-6, ropeTheta: 1000000,
                        maxPositionEmbeddings: 32768, tieWordEmbeddings: true, attentionBias: true,
                        bosTokenId: 151643, eosTokenIds: [151645]),
            LlamaConfig(architecture: "mistral", hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32,
                        numKVHeads: 8, headDim: 128, vocabSize: 32768, rmsNormEps: 1e-5, ropeTheta: 1000000,
                        maxPositionEmbeddings: 32768, tieWordEmbeddings: false, bosTokenId: 1, eosTokenIds: [2]),
        ]
        for c in configs {
            let bytes = c.hfConfigJSON(torchDtype: "bfloat16").serialized()
            let hf = try HFConfig.decode(Data(bytes), file: "config.json")
            XCTAssertEqual(try hf.llamaConfig(file: "config.json"), c, c.architecture)
            XCTAssertEqual(hf.torchDtype, "bfloat16")
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            XCTAssertEqual(json["architectures"] as? [String], [c.hfArchitecture.0])
            XCTAssertEqual(json["model_type"] as? String, c.architecture)
            XCTAssertEqual(json["hidden_act"] as? String, "silu")
        }
        let text = String(decoding: configs[0].hfConfigJSON(torchDtype: "float32").serialized(), as: UTF8.self)
        XCTAssertTrue(text.contains("\"rms_norm_eps\": 1e-05"), text)
        XCTAssertTrue(text.contains("\"rope_type\": \"llama3\""), text)
    }

    func testQwen2ExportKeepsBiasesAndRowOrder() throws {
        let tokenizer = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        let c = LlamaConfig(architecture: "qwen2", hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4,
                            numKVHeads: 2, vocabSize: 128256, rmsNormEps: 1e-6, ropeTheta: 1000000,
                            maxPositionEmbeddings: 4096, tieWordEmbeddings: true, attentionBias: true,
                            bosTokenId: 128000, eosTokenIds: [128001])
        var tensors: [String: WeightTensor] = [:]
        for (name, shape) in ModelFiles.requiredTensors(c) {
            let isNorm = name.hasSuffix("norm.weight")
            let v = TinyLlama3Tests.values(name: name, count: shape.reduce(1, *),
                                           scale: isNorm ? 0.25 : name.hasSuffix(".bias") ? 0.5 : 0.15,
                                           center: isNorm ? 1 : 0)
            tensors[name] = WeightTensor.float32(name: name, shape: shape, values: v)
        }
        let files = ModelFiles(path: "qwen2-test", format: .safetensors, config: c, tensors: tensors,
                               tokenizer: .huggingFace(tokenizerJSON: try Data(contentsOf: tokenizer), tokenizerConfigJSON: nil,
                                                       file: tokenizer.path),
                               chatTemplate: "{{ messages }}", generationDefaults: nil)
        let adapter = try S.randomAdapter(c, rank: 2, alpha: 4, targets: [.q, .k, .v, .up], seed: 9, amplitude: 0.3)
        let exporter = try ModelExporter(files: files, adapter: adapter)
        let ids = [128000, 9906, 1917, 11, 1268, 527, 499, 30]
        let want = S.logits(try LlamaModel(files: exporter.mergedFiles()), ids)
        XCTAssertGreaterThan(S.relativeError(S.logits(try LlamaModel(files: files), ids), want), 1e-3)
        let out = try S.tempDir("qwen2-export")
        defer { try? FileManager.default.removeItem(at: out) }
        for (format, name) in [(ExportFormat.hf, "hf"), (.gguf, "q.gguf")] {
            let path = out.appendingPathComponent(name).path
            try exporter.write(format: format, to: path, dtype: .f32)
            let reloaded = try ModelFiles.load(path)
            XCTAssertEqual(reloaded.config.architecture, "qwen2", name)
            XCTAssertTrue(reloaded.config.attentionBias, name)
            XCTAssertEqual(S.logits(try LlamaModel(files: reloaded), ids), want, name)
        }
        let gguf = try GGUFFile(path: out.appendingPathComponent("q.gguf").path)
        XCTAssertEqual(gguf.metadata["general.architecture"]?.string, "qwen2")
        XCTAssertNotNil(gguf.metadata["qwen2.block_count"])
        // Rotate-half RoPE: rows stay in HF order.
        XCTAssertEqual(try dequantize(gguf.tensor("blk.1.attn_k.weight")),
                       try exporter.values("model.layers.1.self_attn.k_proj.weight"))
        XCTAssertEqual(try dequantize(gguf.tensor("blk.1.attn_k.bias")),
                       try dequantize(tensors["model.layers.1.self_attn.k_proj.bias"]!))
    }
}
