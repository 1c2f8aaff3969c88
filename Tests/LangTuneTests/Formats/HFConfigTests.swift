import Foundation
import XCTest
@testable import LangTune

final class HFConfigTests: XCTestCase {
    func config(_ json: String) throws -> LlamaConfig {
        try HFConfig.decode(Data(json.utf8), file: "config.json").llamaConfig(file: "config.json")
    }

    func testLlama31Config() throws {
        let c = try config("""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
         "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "max_position_embeddings": 131072, "tie_word_embeddings": false,
         "attention_bias": false, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16",
         "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "head_dim": 128}
        """)
        XCTAssertEqual(c, LlamaConfig(architecture: "llama", hiddenSize: 4096, intermediateSize: 14336, numLayers: 32,
                                      numHeads: 32, numKVHeads: 8, headDim: 128, vocabSize: 128256, rmsNormEps: 1e-5,
                                      ropeTheta: 500000,
                                      ropeScaling: RopeScaling(type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4,
                                                               originalMaxPositionEmbeddings: 8192),
                                      maxPositionEmbeddings: 131072, tieWordEmbeddings: false, attentionBias: false,
                                      bosTokenId: 128000, eosTokenIds: [128001, 128008, 128009]))
        let raw = try HFConfig.decode(Data(#"{"torch_dtype": "bfloat16", "eos_token_id": 2}"#.utf8), file: "c")
        XCTAssertEqual(raw.torchDtype, "bfloat16")
        XCTAssertEqual(raw.eosTokenId, .single(2))
    }

    func testSmolLM2StyleDefaults() throws {
        // No head_dim, no kv heads, no eps/theta/rope_scaling: transformers' defaults apply.
        let c = try config("""
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
         "num_attention_heads": 9, "vocab_size": 49152, "tie_word_embeddings": true, "eos_token_id": 2, "rope_scaling": null,
         "head_dim": null}
        """)
        XCTAssertEqual(c.headDim, 64)
        XCTAssertEqual(c.numKVHeads, 9)
        XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertEqual(c.maxPositionEmbeddings, 2048)
        XCTAssertNil(c.ropeScaling)
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.eosTokenIds, [2])
    }

    func testQwen2AndMistral() throws {
        let q = try config("""
        {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
         "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "rms_norm_eps": 1e-06,
         "rope_theta": 1000000.0, "max_position_embeddings": 32768, "tie_word_embeddings": true,
         "use_sliding_window": false, "sliding_window": 32768, "eos_token_id": 151643, "bos_token_id": 151643}
        """)
        XCTAssertEqual(q.architecture, "qwen2")
        XCTAssertTrue(q.attentionBias, "Qwen2 always has q/k/v biases")
        XCTAssertEqual(q.headDim, 64)
        XCTAssertEqual(q.ropeTheta, 1_000_000)
        let m = try config("""
        {"architectures": ["MistralForCausalLM"], "hidden_size": 5120, "intermediate_size": 14336, "num_hidden_layers": 40,
         "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 131072,
         "rope_scaling": {"type": "default"}, "sliding_window": null}
        """)
        XCTAssertEqual(m.architecture, "mistral")
        XCTAssertEqual(m.headDim, 128, "explicit head_dim wins over hidden/heads = 160")
        XCTAssertFalse(m.attentionBias)
        XCTAssertNil(m.ropeScaling)
        XCTAssertEqual(m.maxPositionEmbeddings, 131072)
        // transformers 5 puts rope settings in rope_parameters.
        let v5 = try config("""
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
         "num_attention_heads": 4, "vocab_size": 10, "rope_parameters": {"rope_type": "default", "rope_theta": 12345.0}}
        """)
        XCTAssertEqual(v5.ropeTheta, 12345)
    }

    func testRefusals() {
        let base = #""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10"#
        assertFormatError(try config(#"{"architectures": ["GPT2LMHeadModel"], \#(base)}"#), file: "config.json",
                          contains: ["unsupported architecture GPT2LMHeadModel"])
        for type in ["dynamic", "yarn", "longrope"] {
            assertFormatError(try config(#"{"architectures": ["LlamaForCausalLM"], \#(base), "rope_scaling": {"type": "\#(type)", "factor": 2.0}}"#),
                              contains: ["unsupported rope_scaling type \"\(type)\""])
        }
        assertFormatError(try config(#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}"#), contains: ["missing num_attention_heads"])
        assertFormatError(try config(#"{"architectures": ["LlamaForCausalLM"], \#(base), "num_key_value_heads": 3}"#), contains: ["not a multiple"])
        assertFormatError(try config(#"{"architectures": ["LlamaForCausalLM"], \#(base), "rope_scaling": {"rope_type": "llama3"}}"#), contains: ["positive factor"])
        assertFormatError(try config(#"{"model_type": "gpt2", \#(base)}"#), contains: ["no architectures"])
        assertFormatError(try config(#"{"architectures": "LlamaForCausalLM"}"#), contains: ["not a valid config.json"])
        assertFormatError(try config("not json"), contains: ["not a valid config.json"])
        XCTAssertEqual(try config(#"{"model_type": "qwen2", \#(base)}"#).architecture, "qwen2")
    }

    func testGenerationConfig() throws {
        let g = try GenerationDefaults.decode(Data("""
        {"bos_token_id": 128000, "do_sample": true, "eos_token_id": [128001, 128009], "temperature": 0.6, "top_p": 0.9,
         "top_k": 50, "repetition_penalty": 1.1, "transformers_version": "4.45.0"}
        """.utf8), file: "generation_config.json")
        XCTAssertEqual(g, GenerationDefaults(temperature: 0.6, topP: 0.9, topK: 50, repetitionPenalty: 1.1, eosTokenIds: [128001, 128009]))
        let greedy = try GenerationDefaults.decode(Data(#"{"do_sample": false, "temperature": 0.7, "eos_token_id": 2}"#.utf8), file: "g")
        XCTAssertEqual(greedy.temperature, 0)
        XCTAssertEqual(greedy.eosTokenIds, [2])
        assertFormatError(try GenerationDefaults.decode(Data(#"{"top_k": "x"}"#.utf8), file: "g"), file: "g", contains: ["not a valid generation_config.json"])
    }
}

final class GGUFConfigTests: XCTestCase {
    /// A GGUF with llama-style keys and the tensors named in `tensors` (F32 zeros of the given shape).
    func gguf(arch: String = "llama", extra: [(String, GGUFValue)] = [], tensors: [(String, [Int])] = [],
              rawTensors: [(String, [Int], [Float])] = [], tokens: Int = 10) throws -> GGUFFile {
        var w = try GGUFWriter()
        w.set("general.architecture", .string(arch))
        w.set("\(arch).embedding_length", .u32(64))
        w.set("\(arch).feed_forward_length", .u32(128))
        w.set("\(arch).block_count", .u32(2))
        w.set("\(arch).attention.head_count", .u32(4))
        w.set("\(arch).attention.head_count_kv", .u32(2))
        w.set("\(arch).attention.layer_norm_rms_epsilon", .f32(1e-5))
        w.set("\(arch).rope.freq_base", .f32(100000))
        w.set("\(arch).context_length", .u32(8192))
        w.set("tokenizer.ggml.tokens", .array(elementType: 8, (0..<tokens).map { .string("t\($0)") }))
        w.set("tokenizer.ggml.bos_token_id", .u32(1))
        w.set("tokenizer.ggml.eos_token_id", .u32(2))
        for (k, v) in extra { w.set(k, v) }
        for (name, shape) in tensors {
            try w.addTensor(name: name, shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)), as: .f32)
        }
        for (name, shape, values) in rawTensors { try w.addTensor(name: name, shape: shape, values: values, as: .f32) }
        return try GGUFFile(storage: ByteStorage(copying: w.serialized()), path: "m.gguf")
    }

    func testLlamaKeys() throws {
        let c = try gguf().llamaConfig()
        XCTAssertEqual(c, LlamaConfig(architecture: "llama", hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4,
                                      numKVHeads: 2, headDim: 16, vocabSize: 10, rmsNormEps: 1e-5, ropeTheta: 100000,
                                      maxPositionEmbeddings: 8192, tieWordEmbeddings: true, attentionBias: false,
                                      bosTokenId: 1, eosTokenIds: [2]))
        let untied = try gguf(extra: [("llama.vocab_size", .u32(12)), ("tokenizer.ggml.eot_token_id", .u32(7))],
                              tensors: [("output.weight", [12, 64])]).llamaConfig()
        XCTAssertFalse(untied.tieWordEmbeddings)
        XCTAssertEqual(untied.vocabSize, 12, "vocab_size wins over the token count")
        XCTAssertEqual(untied.eosTokenIds, [2, 7])
        let q = try gguf(arch: "qwen2").llamaConfig()
        XCTAssertEqual(q.architecture, "qwen2")
        XCTAssertTrue(q.attentionBias)
    }

    func testRefusals() throws {
        assertFormatError(try gguf(arch: "gpt2").llamaConfig(), file: "m.gguf", contains: ["unsupported architecture \"gpt2\""])
        assertFormatError(try gguf(extra: [("llama.rope.scaling.type", .string("yarn"))]).llamaConfig(), contains: ["unsupported RoPE scaling type \"yarn\""])
        XCTAssertNil(try gguf(extra: [("llama.rope.scaling.type", .string("none"))]).llamaConfig().ropeScaling)
        assertFormatError(try gguf(extra: [("llama.rope.scaling.type", .string("linear"))]).llamaConfig(), contains: ["needs llama.rope.scaling.factor"])
        assertFormatError(try gguf(extra: [("llama.rope.scale_linear", .f32(-2))]).llamaConfig(), contains: ["must be positive"])
        assertFormatError(try gguf(extra: [("llama.rope.dimension_count", .u32(8))]).llamaConfig(), contains: ["partial RoPE"])
        assertFormatError(try gguf(extra: [("llama.attention.head_count_kv", .u32(3))]).llamaConfig(), contains: ["not a multiple"])
        assertFormatError(try gguf(extra: [("llama.block_count", .string("2"))]).llamaConfig(), contains: ["llama.block_count", "expected an integer"])
        XCTAssertEqual(try gguf(extra: [("llama.attention.head_count_kv", .array(elementType: 4, [.u32(2), .u32(2)]))]).llamaConfig().numKVHeads, 2)
    }

    /// Linear RoPE scaling in both of llama.cpp's spellings and in config.json (`type` or `rope_type`);
    /// the inverse frequencies are transformers' float32 ones divided by the factor.
    func testLinearRopeScaling() throws {
        func hfConfig(_ json: String) throws -> LlamaConfig {
            try HFConfig.decode(Data(json.utf8), file: "config.json").llamaConfig(file: "config.json")
        }
        let linear = RopeScaling(type: "linear", factor: 4)
        XCTAssertEqual(try gguf(extra: [("llama.rope.scaling.type", .string("linear")), ("llama.rope.scaling.factor", .f32(4))])
            .llamaConfig().ropeScaling, linear)
        XCTAssertEqual(try gguf(extra: [("llama.rope.scale_linear", .f32(4))]).llamaConfig().ropeScaling, linear)
        XCTAssertNil(try gguf(extra: [("llama.rope.scaling.type", .string("linear")), ("llama.rope.scaling.factor", .f32(1))])
            .llamaConfig().ropeScaling)
        let base = #""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10"#
        for key in ["type", "rope_type"] {
            let c = try hfConfig(#"{"architectures": ["LlamaForCausalLM"], \#(base), "rope_scaling": {"\#(key)": "linear", "factor": 4.0}}"#)
            XCTAssertEqual(c.ropeScaling, linear)
            XCTAssertEqual(try HFConfig.decode(Data(c.hfConfigJSON(torchDtype: "float32").serialized()), file: "w").llamaConfig(file: "w"), c)
        }
        assertFormatError(try hfConfig(#"{"architectures": ["LlamaForCausalLM"], \#(base), "rope_scaling": {"type": "linear", "factor": 0}}"#),
                          contains: ["rope_scaling of type linear needs a positive factor"])
        let rope = Rope(headDim: 16, theta: 10000, scaling: linear)
        for i in 0..<8 {
            // torch: (1.0 / (10000 ** (torch.arange(0, 16, 2).float() / 16))) / 4.0, in float32.
            let plain = Float(1.0 / pow(Float(10000), Float(2 * i) / 16))
            XCTAssertEqual(rope.invFreq[i], plain / 4)
        }
        XCTAssertEqual(rope.invFreq[1], 0.07905694, accuracy: 1e-8)
    }

    /// llama.cpp stores Llama 3 RoPE scaling as `rope_freqs.weight`; the parameters are recovered and checked.
    func testLlama3RopeFreqs() throws {
        let s = RopeScaling(type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192)
        // Head size 16 gives too few frequencies in the smooth band; use a realistic one.
        let hd = 128
        let factors = llama3RopeFactors(s, headDim: hd, theta: 500000).map(Float.init)
        XCTAssertEqual(factors.first, 1)
        XCTAssertEqual(factors.last, 8)
        XCTAssertTrue(factors.contains { $0 > 1 && $0 < 8 }, "some frequencies in the smooth band")
        let extra: [(String, GGUFValue)] = [("llama.attention.key_length", .u32(UInt32(hd))), ("llama.rope.freq_base", .f32(500000))]
        let c = try gguf(extra: extra, rawTensors: [("rope_freqs.weight", [hd / 2], factors)]).llamaConfig()
        XCTAssertEqual(c.ropeScaling, s)
        XCTAssertEqual(c.headDim, 128)
        var wrong = factors
        wrong[wrong.count / 2 + 3] *= 1.5
        assertFormatError(try gguf(extra: extra, rawTensors: [("rope_freqs.weight", [hd / 2], wrong)]).llamaConfig(),
                          contains: ["does not match Llama 3 RoPE scaling"])
        XCTAssertNil(try gguf(extra: extra, rawTensors: [("rope_freqs.weight", [hd / 2], [Float](repeating: 1, count: hd / 2))]).llamaConfig().ropeScaling)
    }

    func testTensorNames() {
        let pairs = [
            ("token_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight"),
            ("output.weight", "lm_head.weight"), ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
            ("blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"),
            ("blk.12.attn_q.bias", "model.layers.12.self_attn.q_proj.bias"),
            ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight"),
            ("blk.1.attn_v.bias", "model.layers.1.self_attn.v_proj.bias"),
            ("blk.29.attn_output.weight", "model.layers.29.self_attn.o_proj.weight"),
            ("blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"),
            ("blk.3.ffn_gate.weight", "model.layers.3.mlp.gate_proj.weight"),
            ("blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"),
            ("blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"),
        ]
        for (g, h) in pairs {
            XCTAssertEqual(GGUFTensorNames.hfName(forGGUF: g), h)
            XCTAssertEqual(GGUFTensorNames.ggufName(forHF: h), g)
        }
        for odd in ["rope_freqs.weight", "blk.01.attn_q.weight", "blk.x.attn_q.weight", "blk.1.attn_q", "blk.-1.ffn_up.weight", "token_embd"] {
            XCTAssertNil(GGUFTensorNames.hfName(forGGUF: odd), odd)
        }
        XCTAssertNil(GGUFTensorNames.ggufName(forHF: "model.layers.0.self_attn.rotary_emb.inv_freq"))
    }

    func testUnpermuteUndoesLlamaCppPermutation() throws {
        let heads = 3, hd = 8, cols = 5
        let hf: [[Float]] = (0..<(heads * hd)).map { r in (0..<cols).map { Float(r * 100 + $0) } }
        let gg = llamaCppPermute(hf, heads: heads)
        XCTAssertNotEqual(gg, hf)
        XCTAssertEqual(gg[1], hf[4], "GGUF row 1 (h0, i0, j1) is HF row hd/2")
        let t = WeightTensor(name: "q", shape: [heads * hd, cols], dtype: .f32, storage: ByteStorage(copying: gg.flatMap { $0 }),
                             offset: 0, byteCount: heads * hd * cols * 4)
        let back = try GGUFTensorNames.unpermuteQK(t, heads: heads)
        XCTAssertEqual(try dequantize(back), hf.flatMap { $0 })
        let again = try GGUFTensorNames.permuteQK(back, heads: heads)
        XCTAssertEqual(try dequantize(again), gg.flatMap { $0 })
        // Biases (one value per row) permute the same way.
        let bias = WeightTensor(name: "b", shape: [heads * hd], dtype: .f32, storage: ByteStorage(copying: gg.map { $0[0] }),
                                offset: 0, byteCount: heads * hd * 4)
        XCTAssertEqual(try dequantize(GGUFTensorNames.unpermuteQK(bias, heads: heads)), hf.map { $0[0] })
        // Quantized rows move as whole byte rows.
        let q8 = hf.map { r in (0..<64).map { Float($0 % 7) + r[0] } }
        let q8gg = llamaCppPermute(q8, heads: heads)
        let bytes = quantizeQ8_0(q8gg.flatMap { $0 })
        let tq = WeightTensor(name: "q8", shape: [heads * hd, 64], dtype: .q8_0, storage: ByteStorage(copying: bytes), offset: 0, byteCount: bytes.count)
        let unq = try GGUFTensorNames.unpermuteQK(tq, heads: heads)
        withExtendedLifetime(unq) { XCTAssertEqual(Array(unq.bytes), quantizeQ8_0(q8.flatMap { $0 })) }
        assertFormatError(try GGUFTensorNames.unpermuteQK(t, heads: 5), contains: ["do not split into 5 heads"])
    }
}
