import Foundation
import XCTest
@testable import LangTune

/// Gemma 3's config.json in the spellings of transformers 5 (per-layer-type `rope_parameters`, as it
/// writes it when saving the model it read from the Gemma GGUF) and transformers 4.5x (`rope_theta`,
/// `rope_local_base_freq`), read to the same hyper-parameters as the GGUF; what LangTune cannot run
/// is refused by name.
final class HFConfigGemma3Tests: XCTestCase {
    static let layerTypes = (0..<18).map { ($0 + 1) % 6 == 0 ? "\"full_attention\"" : "\"sliding_attention\"" }.joined(separator: ", ")

    /// transformers 5.24's `save_pretrained` of Gemma 3 270M loaded from its GGUF (transformers' own keys, trimmed).
    static let transformers5 = """
    {"_sliding_window_pattern": 6, "architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
     "attn_logit_softcapping": null, "bos_token_id": 2, "dtype": "float32", "eos_token_id": 1, "final_logit_softcapping": null,
     "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 640, "initializer_range": 0.02,
     "intermediate_size": 2048, "layer_types": [\(layerTypes)], "max_position_embeddings": 32768, "model_type": "gemma3_text",
     "num_attention_heads": 4, "num_hidden_layers": 18, "num_key_value_heads": 1, "pad_token_id": 0,
     "query_pre_attn_scalar": 256, "rms_norm_eps": 9.999999974752427e-07,
     "rope_parameters": {"full_attention": {"rope_theta": 1000000.0, "rope_type": "default"},
                         "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
     "sliding_window": 512, "tie_word_embeddings": true, "unk_token_id": 3, "use_bidirectional_attention": false,
     "use_cache": true, "vocab_size": 262144}
    """

    /// The same model in transformers 4.5x's spelling, without layer_types (older configs).
    static let transformers4 = """
    {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "attention_bias": false, "bos_token_id": 2,
     "eos_token_id": [1, 106], "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 640,
     "intermediate_size": 2048, "max_position_embeddings": 32768, "num_attention_heads": 4, "num_hidden_layers": 18,
     "num_key_value_heads": 1, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0,
     "rope_scaling": null, "rope_theta": 1000000.0, "sliding_window": 512, "sliding_window_pattern": 6,
     "torch_dtype": "bfloat16", "vocab_size": 262144}
    """

    func config(_ json: String) throws -> LlamaConfig {
        try HFConfig.decode(Data(json.utf8), file: "config.json").llamaConfig(file: "config.json")
    }

    func edited(_ json: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        var o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        edit(&o)
        return String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
    }

    func message(_ json: String) -> String {
        do { _ = try config(json); return "(loaded)" } catch let e as FormatError { return e.description } catch { return "untyped: \(error)" }
    }

    func testBothSpellingsReadAsTheGGUF() throws {
        let expected = LlamaConfig(
            architecture: "gemma3", hiddenSize: 640, intermediateSize: 2048, numLayers: 18, numHeads: 4, numKVHeads: 1,
            headDim: 256, vocabSize: 262_144, rmsNormEps: 1e-6, ropeTheta: 1_000_000, maxPositionEmbeddings: 32768,
            tieWordEmbeddings: true, bosTokenId: 2, eosTokenIds: [1, 106],
            gemma3: Gemma3Options(slidingWindow: 512, slidingWindowPattern: 6, localRopeTheta: 10_000, queryPreAttnScalar: 256))
        var five = try config(Self.transformers5)
        XCTAssertEqual(five.eosTokenIds, [1])
        five.eosTokenIds = [1, 106]
        XCTAssertEqual(five, expected)
        XCTAssertEqual(try config(Self.transformers4), expected)
        // No architectures: model_type decides. Absent optional fields take Gemma3TextConfig's defaults.
        let bare = try config("""
        {"model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 12,
         "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 1000}
        """)
        XCTAssertEqual(bare.headDim, 256)
        XCTAssertEqual(bare.gemma3, Gemma3Options(slidingWindow: 4096, slidingWindowPattern: 6, localRopeTheta: 10_000, queryPreAttnScalar: 256))
        XCTAssertEqual([bare.ropeTheta, Double(bare.rmsNormEps)], [1_000_000, Double(Float(1e-6))])
        XCTAssertTrue(bare.tieWordEmbeddings)

        // The real file, when present: same hyper-parameters as the config.json spellings.
        if let url = try? TestPaths.require(TestPaths.gemma3GGUF) {
            XCTAssertEqual(try ModelFiles.load(url.path).config, expected)
        }
    }

    func testExportedConfigReadsBack() throws {
        let c = try config(Self.transformers4)
        let written = c.hfConfigJSON(torchDtype: "float32").serialized()
        XCTAssertEqual(try HFConfig.decode(Data(written), file: "w").llamaConfig(file: "w"), c)
        let text = String(decoding: written, as: UTF8.self)
        XCTAssertTrue(text.contains("\"model_type\": \"gemma3_text\""), text)
        XCTAssertTrue(text.contains("\"hidden_activation\": \"gelu_pytorch_tanh\""), text)
    }

    /// Gemma 3 4B and up: the global layers' RoPE scaled linearly (factor 8), in both spellings; the
    /// sliding-window layers keep their plain base. Written back in the 4.x spelling, read back alike.
    func testLinearRopeScalingOfTheGlobalLayers() throws {
        let v4 = try config(try edited(Self.transformers4) { $0["rope_scaling"] = ["rope_type": "linear", "factor": 8.0] })
        let v5 = try config(try edited(Self.transformers5) { $0["rope_parameters"] = [
            "full_attention": ["rope_type": "linear", "factor": 8.0, "rope_theta": 1e6],
            "sliding_attention": ["rope_type": "default", "rope_theta": 1e4]] })
        for c in [v4, v5] {
            XCTAssertEqual(c.ropeScaling, RopeScaling(type: "linear", factor: 8))
            XCTAssertEqual(c.ropeTheta, 1e6)
            XCTAssertEqual(c.gemma3?.localRopeTheta, 1e4)
            let written = try HFConfig.decode(Data(c.hfConfigJSON(torchDtype: "float32").serialized()), file: "w").llamaConfig(file: "w")
            XCTAssertEqual(written.ropeScaling, c.ropeScaling)
        }
        // The model: global layers' inverse frequencies divided by 8 in float32 (transformers' linear rope),
        // the local layers' untouched.
        var tiny = v4
        (tiny.hiddenSize, tiny.intermediateSize, tiny.headDim, tiny.numLayers, tiny.vocabSize) = (64, 128, 16, 6, 32)
        let model = LlamaModel.synthetic(config: tiny, projections: .f32, backend: CPUBackend(threads: Threads(1)))
        let plain = (0..<8).map { i in Float(1.0 / pow(Float(1e6), Float(2 * i) / 16)) }
        XCTAssertEqual(model.rope.invFreq, plain.map { $0 / 8 })
        XCTAssertEqual(model.localRope?.invFreq, (0..<8).map { i in Float(1.0 / pow(Float(1e4), Float(2 * i) / 16)) })
    }

    /// Gemma 3 4B and up ship as `Gemma3ForConditionalGeneration`: the text model is read from
    /// `text_config` (BOS/EOS from the outer config when it has none), and the tensors of both
    /// checkpoint layouts map to the text model's names, the vision tower's to none.
    func testConditionalGenerationTextModel() throws {
        var text = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(Self.transformers5.utf8)) as? [String: Any])
        text["eos_token_id"] = nil
        text["architectures"] = nil
        let outer: [String: Any] = ["architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                                    "eos_token_id": [1, 106], "image_token_index": 262144, "text_config": text,
                                    "vision_config": ["model_type": "siglip_vision_model", "hidden_size": 1152]]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: outer), as: UTF8.self)
        let hf = try HFConfig.decode(Data(json.utf8), file: "config.json")
        XCTAssertEqual(hf.textModelOf, "Gemma3ForConditionalGeneration")
        var expected = try config(Self.transformers5)
        expected.eosTokenIds = [1, 106]
        // Adapters made for it are written under the multimodal class's names (AdapterFilesTests).
        expected.adapterModuleRoot = "model.language_model"
        XCTAssertEqual(try hf.llamaConfig(file: "config.json"), expected)
        let names = [
            "model.language_model.layers.3.self_attn.q_proj.weight": "model.layers.3.self_attn.q_proj.weight",
            "model.language_model.embed_tokens.weight": "model.embed_tokens.weight",
            "language_model.model.norm.weight": "model.norm.weight",
            "language_model.lm_head.weight": "lm_head.weight",
            "lm_head.weight": "lm_head.weight",
        ]
        for (stored, textName) in names { XCTAssertEqual(HFConfig.textModelTensorName(stored), textName, stored) }
        for vision in ["model.vision_tower.vision_model.embeddings.patch_embedding.weight",
                       "vision_tower.vision_model.post_layernorm.bias", "model.multi_modal_projector.mm_input_projection_weight",
                       "multi_modal_projector.mm_soft_emb_norm.weight"] {
            XCTAssertNil(HFConfig.textModelTensorName(vision), vision)
        }
    }

    func testRefusals() throws {
        XCTAssertEqual(message(try edited(Self.transformers5) { $0["attn_logit_softcapping"] = 50.0 }),
                       "config.json: attention logit soft-capping (attn_logit_softcapping) is not supported")
        XCTAssertEqual(message(try edited(Self.transformers5) { $0["hidden_activation"] = "gelu" }),
                       #"config.json: hidden_activation "gelu" is not supported for Gemma 3 (only gelu_pytorch_tanh)"#)
        XCTAssertEqual(message(try edited(Self.transformers5) { o in
            var types = o["layer_types"] as? [String] ?? []
            types[3] = "full_attention"
            o["layer_types"] = types
        }), "config.json: layer_types does not repeat one pattern (every 4th layer global): layer 5 is full_attention")
        XCTAssertEqual(message(try edited(Self.transformers5) { $0["layer_types"] = ["full_attention"] }),
                       "config.json: layer_types has 1 entries for 18 layers")
        XCTAssertEqual(message(try edited(Self.transformers4) { $0["rope_scaling"] = ["rope_type": "yarn", "factor": 8.0] }),
                       #"config.json: rope_scaling type "yarn" is not supported for Gemma 3 (default, linear)"#)
        XCTAssertEqual(message(try edited(Self.transformers4) { $0["rope_scaling"] = ["rope_type": "linear"] }),
                       "config.json: rope_scaling of type linear needs a positive factor")
        XCTAssertEqual(message(try edited(Self.transformers5) { $0["rope_parameters"] = [
            "full_attention": ["rope_theta": 1e6], "sliding_attention": ["rope_type": "linear", "factor": 8.0, "rope_theta": 1e4]] }),
                       #"config.json: rope_parameters.sliding_attention type "linear" is not supported for Gemma 3 (only default)"#)
        XCTAssertEqual(message(try edited(Self.transformers5) { $0["architectures"] = ["Gemma3ForConditionalGeneration"] }),
                       "config.json: Gemma3ForConditionalGeneration without a text_config")
        XCTAssertEqual(message(#"{"architectures": ["Gemma3ForConditionalGeneration"], "text_config": {"model_type": "siglip_vision_model"}}"#),
                       #"config.json: text_config has model_type "siglip_vision_model"; Gemma 3's text model is gemma3_text"#)
        XCTAssertEqual(message(#"{"architectures": ["PaliGemmaForConditionalGeneration"]}"#),
                       "config.json: unsupported architecture PaliGemmaForConditionalGeneration (supported: Gemma3ForCausalLM, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, and Gemma3ForConditionalGeneration's text model)")
        XCTAssertEqual(message("""
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 100,
         "rope_parameters": {"full_attention": {"rope_theta": 1e6}, "sliding_attention": {"rope_theta": 1e4}}}
        """), "config.json: rope_parameters per layer type is only supported for Gemma 3")
    }
}
