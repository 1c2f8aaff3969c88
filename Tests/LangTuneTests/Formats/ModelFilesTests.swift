import Foundation
import XCTest
@testable import LangTune

final class ModelFilesTests: XCTestCase {
    let tiny = LlamaConfig(architecture: "llama", hiddenSize: 8, intermediateSize: 16, numLayers: 2, numHeads: 2, numKVHeads: 1,
                           headDim: 4, vocabSize: 12, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64,
                           tieWordEmbeddings: false, bosTokenId: 1, eosTokenIds: [2])

    func values(_ shape: [Int], seed: Int) -> [Float] {
        (0..<shape.reduce(1, *)).map { Float(($0 * 7 + seed * 13) % 23) / 8 - 1.4 }
    }

    /// An HF folder for `config` (config.json written from `configJSON`).
    func makeFolder(configJSON: String, config: LlamaConfig, skip: Set<String> = [], reshape: [String: [Int]] = [:],
                    extra: [String: String] = [:]) throws -> URL {
        let dir = try makeTempDir()
        try Data(configJSON.utf8).write(to: dir.appendingPathComponent("config.json"))
        var w = SafetensorsWriter(metadata: ["format": "pt"])
        for (i, (name, shape)) in ModelFiles.requiredTensors(config).enumerated() where !skip.contains(name) {
            let s = reshape[name] ?? shape
            try w.addTensor(name: name, shape: s, values: values(s, seed: i), as: .bf16)
        }
        try w.addTensor(name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [2], values: [1, 0.01])
        try w.write(to: dir.appendingPathComponent("model.safetensors").path)
        try Data(#"{"model": {"type": "BPE"}}"#.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        for (name, text) in extra { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
        return dir
    }

    let tinyJSON = """
    {"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
     "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 12, "rms_norm_eps": 1e-5,
     "max_position_embeddings": 64, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2}
    """

    func testSafetensorsFolder() throws {
        let dir = try makeFolder(configJSON: tinyJSON, config: tiny, extra: [
            "tokenizer_config.json": #"{"chat_template": "{{ messages }}", "bos_token": "<s>"}"#,
            "generation_config.json": #"{"temperature": 0.5, "eos_token_id": [2, 3]}"#,
        ])
        let m = try ModelFiles.load(dir.path)
        XCTAssertEqual(m.format, .safetensors)
        XCTAssertEqual(m.config, tiny)
        XCTAssertEqual(m.chatTemplate, "{{ messages }}")
        XCTAssertEqual(m.generationDefaults, GenerationDefaults(temperature: 0.5, eosTokenIds: [2, 3]))
        guard case .huggingFace(let tj, let tc, let file) = m.tokenizer else { return XCTFail("expected an HF tokenizer") }
        XCTAssertEqual(String(decoding: tj, as: UTF8.self), #"{"model": {"type": "BPE"}}"#)
        XCTAssertNotNil(tc)
        XCTAssertEqual(file, dir.appendingPathComponent("tokenizer.json").path)
        let q = try XCTUnwrap(m.tensors["model.layers.1.self_attn.q_proj.weight"])
        XCTAssertEqual(q.shape, [8, 8])
        XCTAssertEqual(q.dtype, .bf16)
        XCTAssertEqual(try dequantize(q), values([8, 8], seed: 11).map { BFloat16Bits.toFloat(BFloat16Bits.fromFloat($0)) })
        // 12·8 embed + 2·(8 + 64 + 32 + 32 + 64 + 8 + 3·128) + 8 norm + 96 lm_head.
        XCTAssertEqual(m.parameterCount, 96 + 2 * (8 + 64 + 32 + 32 + 64 + 8 + 384) + 8 + 96)
        XCTAssertEqual(m.dtypeHistogram, [.bf16: 21, .f32: 1])
        XCTAssertEqual(m.dtypeUsage[.bf16]?.elements, m.parameterCount)

        // chat_template.jinja wins over tokenizer_config.json.
        try Data("JINJA".utf8).write(to: dir.appendingPathComponent("chat_template.jinja"))
        XCTAssertEqual(try ModelFiles.load(dir.path).chatTemplate, "JINJA")
    }

    func testChatTemplateList() throws {
        let json = #"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#
        XCTAssertEqual(try ModelFiles.chatTemplate(inConfigJSON: Data(json.utf8), file: "x"), "D")
        XCTAssertNil(try ModelFiles.chatTemplate(inConfigJSON: Data("{}".utf8), file: "x"))
    }

    func testShardedFolderAndQwen2Biases() throws {
        var qwen = tiny
        qwen.architecture = "qwen2"
        qwen.attentionBias = true
        qwen.tieWordEmbeddings = true
        let dir = try makeTempDir()
        try Data(#"{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 12, "rms_norm_eps": 1e-5, "max_position_embeddings": 64, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}"#.utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        try Data("{}".utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        let required = ModelFiles.requiredTensors(qwen)
        XCTAssertTrue(required.contains { $0.name == "model.layers.1.self_attn.k_proj.bias" && $0.shape == [4] })
        XCTAssertFalse(required.contains { $0.name == "lm_head.weight" })
        var map: [String: String] = [:]
        for (part, slice) in [required.prefix(10), required.dropFirst(10)].enumerated() {
            var w = SafetensorsWriter()
            let file = "model-0000\(part + 1)-of-00002.safetensors"
            for (name, shape) in slice {
                try w.addTensor(name: name, shape: shape, values: values(shape, seed: part))
                map[name] = file
            }
            try w.write(to: dir.appendingPathComponent(file).path)
        }
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let m = try ModelFiles.load(dir.path)
        XCTAssertEqual(m.config, qwen)
        XCTAssertEqual(m.tensors.count, required.count)
        XCTAssertNil(m.chatTemplate)
        XCTAssertNil(m.generationDefaults)
    }

    func testFolderErrors() throws {
        let missing = try makeFolder(configJSON: tinyJSON, config: tiny, skip: ["model.layers.1.mlp.up_proj.weight"])
        assertFormatError(try ModelFiles.load(missing.path), file: missing.appendingPathComponent("model.safetensors").path,
                          contains: ["missing tensor \"model.layers.1.mlp.up_proj.weight\"", "[16, 8]"])
        let wrong = try makeFolder(configJSON: tinyJSON, config: tiny, reshape: ["model.layers.0.self_attn.k_proj.weight": [8, 8]])
        assertFormatError(try ModelFiles.load(wrong.path), file: wrong.appendingPathComponent("model.safetensors").path,
                          contains: ["model.layers.0.self_attn.k_proj.weight", "shape [8, 8], expected [4, 8]"])
        let noHead = try makeFolder(configJSON: tinyJSON, config: tiny, skip: ["lm_head.weight"])
        assertFormatError(try ModelFiles.load(noHead.path), contains: ["missing tensor \"lm_head.weight\""])
        let noTok = try makeFolder(configJSON: tinyJSON, config: tiny)
        try FileManager.default.removeItem(at: noTok.appendingPathComponent("tokenizer.json"))
        assertFormatError(try ModelFiles.load(noTok.path), file: noTok.path, contains: ["no tokenizer.json"])
        let noWeights = try makeFolder(configJSON: tinyJSON, config: tiny)
        try FileManager.default.removeItem(at: noWeights.appendingPathComponent("model.safetensors"))
        assertFormatError(try ModelFiles.load(noWeights.path), file: noWeights.path, contains: ["no model.safetensors"])
        let empty = try makeTempDir()
        assertFormatError(try ModelFiles.load(empty.path), file: empty.path, contains: ["no config.json"])
        assertFormatError(try ModelFiles.load(empty.appendingPathComponent("nothing").path), contains: ["no such file"])
        let txt = empty.appendingPathComponent("notes.txt")
        try Data("hello".utf8).write(to: txt)
        assertFormatError(try ModelFiles.load(txt.path), file: txt.path, contains: ["expected a .gguf file"])
        let badArch = try makeFolder(configJSON: tinyJSON.replacingOccurrences(of: "LlamaForCausalLM", with: "PhiForCausalLM"), config: tiny)
        assertFormatError(try ModelFiles.load(badArch.path), contains: ["unsupported architecture PhiForCausalLM"])
    }

    /// A llama GGUF built the way llama.cpp converts: q/k rows permuted, names mapped.
    func testGGUFLoadUnpermutesLlamaAndMapsNames() throws {
        for arch in ["llama", "qwen2"] {
            var cfg = tiny
            cfg.architecture = arch
            cfg.attentionBias = arch == "qwen2"
            cfg.tieWordEmbeddings = true
            var w = try GGUFWriter()
            w.set("general.architecture", .string(arch))
            for (k, v) in [("embedding_length", 8), ("feed_forward_length", 16), ("block_count", 2), ("attention.head_count", 2),
                           ("attention.head_count_kv", 1), ("context_length", 64), ("vocab_size", 12)] {
                w.set("\(arch).\(k)", .u32(UInt32(v)))
            }
            w.set("\(arch).attention.layer_norm_rms_epsilon", .f32(1e-5))
            w.set("tokenizer.ggml.model", .string("gpt2"))
            w.set("tokenizer.ggml.bos_token_id", .u32(1))
            w.set("tokenizer.ggml.eos_token_id", .u32(2))
            w.set("tokenizer.chat_template", .string("TEMPLATE"))
            var hf: [String: [Float]] = [:]
            for (i, (name, shape)) in ModelFiles.requiredTensors(cfg).enumerated() {
                let v = values(shape, seed: i)
                hf[name] = v
                var stored = v
                let isQ = name.contains("q_proj"), isK = name.contains("k_proj")
                if arch == "llama" && (isQ || isK) {
                    let heads = isQ ? 2 : 1, cols = shape.count == 2 ? shape[1] : 1
                    let rows = stride(from: 0, to: v.count, by: cols).map { Array(v[$0..<$0 + cols]) }
                    stored = llamaCppPermute(rows, heads: heads).flatMap { $0 }
                }
                try w.addTensor(name: GGUFTensorNames.ggufName(forHF: name)!, shape: shape, values: stored, as: .f32)
            }
            try w.addTensor(name: "rope_freqs.weight", shape: [2], values: [1, 1], as: .f32)
            let path = try makeTempDir().appendingPathComponent("m.gguf").path
            try w.write(to: path)
            let m = try ModelFiles.load(path)
            XCTAssertEqual(m.format, .gguf)
            XCTAssertEqual(m.config.architecture, arch)
            XCTAssertTrue(m.config.tieWordEmbeddings)
            XCTAssertNil(m.config.ropeScaling)
            XCTAssertEqual(m.chatTemplate, "TEMPLATE")
            for (name, v) in hf { XCTAssertEqual(try dequantize(XCTUnwrap(m.tensors[name], name)), v, "\(arch) \(name)") }
            XCTAssertNotNil(m.tensors["rope_freqs.weight"], "tensors without an HF name are kept under their own")
            guard case .gguf(let meta, let file) = m.tokenizer else { return XCTFail() }
            XCTAssertEqual(meta["tokenizer.ggml.model"]?.string, "gpt2")
            XCTAssertEqual(file, path)
        }
    }
}
