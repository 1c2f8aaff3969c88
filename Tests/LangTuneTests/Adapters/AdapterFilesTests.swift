import Foundation
import XCTest
@testable import LangTune

/// PEFT adapter folders: writing, reading back, and refusing what cannot be used.
final class AdapterFilesTests: XCTestCase {
    typealias S = AdapterTestSupport
    let model = S.smallConfig

    func testRoundTripIsBitExact() throws {
        let dir = try S.tempDir("adapter-roundtrip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = try S.randomAdapter(model, rank: 4, alpha: 8, targets: [.v, .q, .down, .gate], seed: 7)
        try adapter.save(to: dir.path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(),
                       ["adapter_config.json", "adapter_model.safetensors"], "no temporary files left")
        let back = try LoRAAdapter.load(from: dir.path, model: model)
        XCTAssertEqual(back.config, adapter.config)
        XCTAssertEqual(back.layers.count, model.numLayers)
        for (i, layer) in adapter.layers.enumerated() {
            XCTAssertEqual(Set(back.layers[i].keys), Set(layer.keys))
            for (t, w) in layer {
                let r = try XCTUnwrap(back.layers[i][t])
                XCTAssertEqual(r.rank, 4)
                XCTAssertEqual(r.a.bits, w.a.bits, "layer \(i) \(t) A")
                XCTAssertEqual(r.b.bits, w.b.bits, "layer \(i) \(t) B")
                XCTAssertTrue(w.b.array.contains { $0 != 0 })
            }
        }
        // Saving again over the same folder replaces both files.
        let other = try S.randomAdapter(model, rank: 4, alpha: 8, targets: [.q], seed: 8)
        try other.save(to: dir.path)
        let again = try LoRAAdapter.load(from: dir.path, model: model)
        XCTAssertEqual(again.config.targets, [.q])
        XCTAssertEqual(again.layers[0][.q]!.b.bits, other.layers[0][.q]!.b.bits)
    }

    func testFilesAreWhatPEFTWrites() throws {
        let dir = try S.tempDir("adapter-files")
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = try S.randomAdapter(model, rank: 2, alpha: 16, targets: [.v, .q, .o], seed: 1, rsLoRA: true)
        try adapter.save(to: dir.appendingPathComponent("nested/out").path)
        let folder = dir.appendingPathComponent("nested/out")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: folder.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(json["peft_type"] as? String, "LORA")
        XCTAssertEqual(json["task_type"] as? String, "CAUSAL_LM")
        XCTAssertEqual(json["r"] as? Int, 2)
        XCTAssertEqual(json["lora_alpha"] as? Int, 16)
        XCTAssertEqual(json["use_rslora"] as? Bool, true)
        XCTAssertEqual(json["target_modules"] as? [String], ["o_proj", "q_proj", "v_proj"])
        XCTAssertEqual(json["bias"] as? String, "none")
        XCTAssertEqual(json["fan_in_fan_out"] as? Bool, false)
        XCTAssertEqual(json["inference_mode"] as? Bool, true)
        XCTAssertEqual(json["use_dora"] as? Bool, false)
        XCTAssertEqual(json["base_model_name_or_path"] as? String, "test-model")
        XCTAssertTrue(json["modules_to_save"] is NSNull)
        XCTAssertTrue(json["layers_to_transform"] is NSNull)
        // Keys sorted as json.dumps(sort_keys=True) writes them.
        let text = try String(contentsOf: folder.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        let keys = text.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
        XCTAssertEqual(keys, keys.sorted())
        XCTAssertEqual(keys.count, json.count)

        let st = try SafetensorsFile(path: folder.appendingPathComponent("adapter_model.safetensors").path)
        XCTAssertEqual(st.metadata, ["format": "pt"])
        XCTAssertEqual(st.tensors.count, model.numLayers * 3 * 2)
        let a = try st.tensor("base_model.model.model.layers.2.self_attn.o_proj.lora_A.weight")
        let b = try st.tensor("base_model.model.model.layers.2.self_attn.o_proj.lora_B.weight")
        XCTAssertEqual(a.dtype, .f32)
        XCTAssertEqual(a.shape, [2, 32])
        XCTAssertEqual(b.shape, [32, 2])
        XCTAssertEqual(try dequantize(b), adapter.layers[2][.o]!.b.array)
    }

    /// What PEFT itself may write: `.default` in names, half-precision tensors, a subset of
    /// layers, and per-module rank/alpha (folded into B so every module uses the adapter's scale).
    func testLoadsPEFTVariants() throws {
        let dir = try S.tempDir("adapter-variants")
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = S.peftConfig(r: 2, alpha: 4, targets: ["q_proj", "v_proj"])
        cfg["layers_to_transform"] = [1]
        cfg["rank_pattern"] = ["model.layers.1.self_attn.v_proj": 4]
        cfg["alpha_pattern"] = ["v_proj": 2]
        let p = "base_model.model.model.layers.1.self_attn."
        try S.writePEFT(dir, config: cfg, tensors: [
            (p + "q_proj.lora_A.default.weight", [2, 32], .bf16),
            (p + "q_proj.lora_B.default.weight", [32, 2], .f16),
            (p + "v_proj.lora_A.weight", [4, 32], .f32),
            (p + "v_proj.lora_B.weight", [16, 4], .f32),
        ])
        let adapter = try LoRAAdapter.load(from: dir.path, model: model)
        XCTAssertEqual(adapter.config.rank, 2)
        XCTAssertEqual(adapter.config.targets, [.q, .v])
        XCTAssertTrue(adapter.layers[0].isEmpty && adapter.layers[2].isEmpty)
        let q = try XCTUnwrap(adapter.layers[1][.q]), v = try XCTUnwrap(adapter.layers[1][.v])
        XCTAssertEqual(v.rank, 4)
        // Expected values straight from the file: bf16/f16 decoded; v's B scaled by (2/4)/(4/2).
        let st = try SafetensorsFile(path: dir.appendingPathComponent("adapter_model.safetensors").path)
        XCTAssertEqual(q.a.array, try dequantize(st.tensor(p + "q_proj.lora_A.default.weight")))
        XCTAssertEqual(q.b.array, try dequantize(st.tensor(p + "q_proj.lora_B.default.weight")))
        let vb = try dequantize(st.tensor(p + "v_proj.lora_B.weight"))
        XCTAssertEqual(v.b.array, vb.map { Float(Double($0) * 0.25) })

        // Saving writes the pattern back so PEFT gets the same scale: alpha 8 for rank 4.
        let out = dir.appendingPathComponent("resaved")
        try adapter.save(to: out.path)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: out.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(json["rank_pattern"] as? [String: Int], [#"model\.layers\.1\.self_attn\.v_proj"#: 4])
        XCTAssertEqual(json["alpha_pattern"] as? [String: Int], [#"model\.layers\.1\.self_attn\.v_proj"#: 8])
        XCTAssertEqual(json["layers_to_transform"] as? [Int], [1])
        let back = try LoRAAdapter.load(from: out.path, model: model)
        XCTAssertEqual(back.layers[1][.v]!.b.bits, v.b.bits)
    }

    /// PEFT adapters made on a Gemma3ForConditionalGeneration name the language model's modules under
    /// `language_model` (transformers 5: `model.language_model.layers.N`, 4.x: `language_model.model.layers.N`);
    /// rank_pattern keys match that full name, not LangTune's own.
    func testLoadsMultimodalLanguageModelNames() throws {
        let dir = try S.tempDir("adapter-multimodal")
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = S.peftConfig(r: 2, alpha: 4, targets: ["q_proj"])
        cfg["rank_pattern"] = [#"model\.language_model\.layers\.1\.self_attn\.q_proj"#: 4]
        for prefix in ["base_model.model.model.language_model.layers.", "base_model.model.language_model.model.layers."] {
            try S.writePEFT(dir, config: cfg, tensors: [
                (prefix + "0.self_attn.q_proj.lora_A.weight", [2, 32], .f32),
                (prefix + "0.self_attn.q_proj.lora_B.weight", [32, 2], .f32),
                (prefix + "1.self_attn.q_proj.lora_A.weight", [4, 32], .f32),
                (prefix + "1.self_attn.q_proj.lora_B.weight", [32, 4], .f32),
            ])
            if prefix.contains("model.language_model.layers") {
                let adapter = try LoRAAdapter.load(from: dir.path, model: model)
                XCTAssertEqual(adapter.layers[0][.q]?.rank, 2)
                XCTAssertEqual(adapter.layers[1][.q]?.rank, 4)
            } else {
                // The 4.x layout's module is language_model.model.layers.1…: the pattern does not match it.
                XCTAssertThrowsError(try LoRAAdapter.load(from: dir.path, model: model)) {
                    XCTAssertTrue("\($0)".contains("rank mismatch"), "\($0)")
                }
            }
        }
        XCTAssertEqual(LoRAAdapter.parsePEFTName("base_model.model.language_model.model.layers.3.mlp.down_proj.lora_B.weight")?.3,
                       "language_model.model.layers.3.mlp.down_proj")
        XCTAssertNil(LoRAAdapter.parsePEFTName("base_model.model.model.vision_tower.layers.0.self_attn.q_proj.lora_A.weight"))
    }

    /// An adapter for the text model of a multimodal folder is written under that folder's module
    /// names, with target_modules a regex PEFT full-matches: the language model's modules and not the
    /// vision tower's projections of the same short names. It reads back bit for bit.
    func testWritesMultimodalLanguageModelNames() throws {
        let dir = try S.tempDir("adapter-multimodal-write")
        defer { try? FileManager.default.removeItem(at: dir) }
        var multimodal = model
        multimodal.adapterModuleRoot = "model.language_model"
        let adapter = try S.randomAdapter(multimodal, rank: 2, alpha: 4, targets: [.q, .down], seed: 5)
        XCTAssertEqual(adapter.config.moduleRoot, "model.language_model")
        try adapter.save(to: dir.path)
        let names = try SafetensorsFile(path: dir.appendingPathComponent("adapter_model.safetensors").path).tensors.map(\.name)
        XCTAssertEqual(names.count, 4 * model.numLayers)
        XCTAssertTrue(names.contains("base_model.model.model.language_model.layers.1.mlp.down_proj.lora_B.weight"), "\(names)")
        XCTAssertTrue(names.allSatisfy { $0.hasPrefix("base_model.model.model.language_model.layers.") }, "\(names)")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        let pattern = try XCTUnwrap(json["target_modules"] as? String)
        let regex = try NSRegularExpression(pattern: "^(?:" + pattern + ")$")
        func matches(_ module: String) -> Bool {
            regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil
        }
        XCTAssertTrue(matches("model.language_model.layers.0.self_attn.q_proj"), pattern)
        XCTAssertTrue(matches("model.language_model.layers.17.mlp.down_proj"), pattern)
        for other in ["model.language_model.layers.0.self_attn.v_proj", "model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj",
                      "model.layers.0.self_attn.q_proj", "model.language_model.layers.0.self_attn.q_proj.lora_A"] {
            XCTAssertFalse(matches(other), "\(pattern) matches \(other)")
        }
        XCTAssertTrue(json["layers_to_transform"] is NSNull)
        let back = try LoRAAdapter.load(from: dir.path, model: multimodal)
        XCTAssertEqual(back.config, adapter.config)
        for (i, layer) in adapter.layers.enumerated() {
            for (t, w) in layer {
                XCTAssertEqual(back.layers[i][t]?.a.bits, w.a.bits, "layer \(i) \(t) A")
                XCTAssertEqual(back.layers[i][t]?.b.bits, w.b.bits, "layer \(i) \(t) B")
            }
        }
        // Read onto the text model alone (a GGUF of it), the same adapter is saved under its names.
        let plain = try LoRAAdapter.load(from: dir.path, model: model)
        XCTAssertNil(plain.config.moduleRoot)
        XCTAssertEqual(LoRAAdapter.peftName(layer: 1, target: .q, matrix: "A", root: plain.config.moduleRoot),
                       "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")
        // Only some layers adapted: the regex names those layers.
        let partial = LoRAAdapter(config: adapter.config, layers: adapter.layers.enumerated().map { $0.offset == 1 ? $0.element : [:] })
        let partialPattern = String(decoding: partial.peftConfig().serialized(), as: UTF8.self)
        XCTAssertTrue(partialPattern.contains(#"layers\\.(1)\\."#), partialPattern)
    }

    func testRSLoRAScale() throws {
        XCTAssertEqual(LoRAAdapter.peftScale(alpha: 16, rank: 4, rsLoRA: true), 8)
        XCTAssertEqual(LoRAAdapter.peftScale(alpha: 16, rank: 4, rsLoRA: false), 4)
        let dir = try S.tempDir("adapter-rslora")
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = S.peftConfig(r: 4, alpha: 16, targets: ["k_proj"])
        cfg["use_rslora"] = true
        let p = "base_model.model.model.layers.0.self_attn.k_proj."
        try S.writePEFT(dir, config: cfg, tensors: [(p + "lora_A.weight", [4, 32], .f32), (p + "lora_B.weight", [16, 4], .f32)])
        let a = try LoRAAdapter.load(from: dir.path, model: model)
        XCTAssertTrue(a.config.useRSLoRA)
        XCTAssertEqual(a.config.scale, 8)
    }

    // MARK: Bad input

    /// Loads `dir` and requires a failure whose message holds every fragment.
    func assertRefused(_ dir: URL, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try LoRAAdapter.load(from: dir.path, model: model)
            XCTFail("loaded an adapter that should be refused (\(fragments))", file: file, line: line)
        } catch {
            let message = "\(error)"
            for f in fragments {
                XCTAssertTrue(message.contains(f), "\"\(message)\" lacks \"\(f)\"", file: file, line: line)
            }
        }
    }

    func refusedCase(_ name: String, config: [String: Any], tensors: [(String, [Int], DType)]? = nil,
                     _ fragments: [String], line: UInt = #line) throws {
        let dir = try S.tempDir("adapter-bad-\(name)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = "base_model.model.model.layers.0.self_attn.q_proj."
        try S.writePEFT(dir, config: config,
                        tensors: tensors ?? [(p + "lora_A.weight", [2, 32], .f32), (p + "lora_B.weight", [32, 2], .f32)])
        assertRefused(dir, fragments, line: line)
    }

    func testRefusesBadAdapters() throws {
        let p = "base_model.model.model.layers.0.self_attn."
        let configFile = "adapter_config.json", weightsFile = "adapter_model.safetensors"
        var c = S.peftConfig()
        c["peft_type"] = "IA3"
        try refusedCase("type", config: c, [configFile, "peft_type", "IA3", "only LORA"])
        c = S.peftConfig(); c.removeValue(forKey: "peft_type")
        try refusedCase("notype", config: c, [configFile, "peft_type is missing"])
        c = S.peftConfig(); c["use_dora"] = true
        try refusedCase("dora", config: c, [configFile, "DoRA"])
        c = S.peftConfig(); c["fan_in_fan_out"] = true
        try refusedCase("fifo", config: c, [configFile, "fan_in_fan_out"])
        c = S.peftConfig(); c["bias"] = "all"
        try refusedCase("bias", config: c, [configFile, "bias", "all"])
        c = S.peftConfig(); c["modules_to_save"] = ["lm_head"]
        try refusedCase("mts", config: c, [configFile, "modules_to_save", "lm_head"])
        c = S.peftConfig(); c["task_type"] = "SEQ_CLS"
        try refusedCase("task", config: c, [configFile, "SEQ_CLS"])
        try refusedCase("unknown-target", config: S.peftConfig(targets: ["q_proj", "embed_tokens"]),
                        [configFile, "target module \"embed_tokens\" is not supported"])
        // Rank in the tensors differs from r.
        try refusedCase("rank", config: S.peftConfig(r: 4), [weightsFile, "rank mismatch", "q_proj.lora_A.weight", "rank 2", "r = 4"])
        // Shapes that do not fit this model (hidden 32): name the tensor, expected and actual.
        try refusedCase("shape", config: S.peftConfig(), tensors: [
            (p + "q_proj.lora_A.weight", [2, 64], .f32), (p + "q_proj.lora_B.weight", [32, 2], .f32)],
                        [weightsFile, "q_proj.lora_A.weight", "[2, 64]", "expected [2, 32]"])
        try refusedCase("shapeB", config: S.peftConfig(), tensors: [
            (p + "k_proj.lora_A.weight", [2, 32], .f32), (p + "k_proj.lora_B.weight", [32, 2], .f32)],
                        [weightsFile, "k_proj.lora_B.weight", "[32, 2]", "expected [16, 2]"])
        // Tensors of modules LangTune cannot adapt.
        try refusedCase("unknown-module", config: S.peftConfig(), tensors: [
            ("base_model.model.model.embed_tokens.lora_embedding_A", [2, 100], .f32)],
                        [weightsFile, "embed_tokens.lora_embedding_A", "not a LoRA matrix of a supported module"])
        try refusedCase("lm-head", config: S.peftConfig(), tensors: [
            ("base_model.model.lm_head.lora_A.weight", [2, 32], .f32)], [weightsFile, "lm_head.lora_A.weight"])
        try refusedCase("half", config: S.peftConfig(), tensors: [(p + "q_proj.lora_A.weight", [2, 32], .f32)],
                        [weightsFile, "has no matching", "q_proj.lora_B.weight"])
        try refusedCase("layer", config: S.peftConfig(), tensors: [
            ("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight", [2, 32], .f32),
            ("base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight", [32, 2], .f32)],
                        [weightsFile, "layer 3", "3 layers"])
        c = S.peftConfig(); c["layers_to_transform"] = [1, 2]
        try refusedCase("ltt", config: c, [weightsFile, "outside layers_to_transform"])
    }

    func testRefusesMissingOrInvalidFiles() throws {
        let dir = try S.tempDir("adapter-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertRefused(dir, ["adapter_config.json", "missing"])
        assertRefused(dir.appendingPathComponent("nope"), ["nope", "no such adapter folder"])
        try Data("{\"peft_type\": \"LORA\", ".utf8).write(to: dir.appendingPathComponent("adapter_config.json"))
        assertRefused(dir, ["adapter_config.json", "not valid JSON"])
        try Data("[1]".utf8).write(to: dir.appendingPathComponent("adapter_config.json"))
        assertRefused(dir, ["adapter_config.json", "not a JSON object"])
        try JSONSerialization.data(withJSONObject: S.peftConfig()).write(to: dir.appendingPathComponent("adapter_config.json"))
        assertRefused(dir, ["adapter_model.safetensors", "missing"])
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("adapter_model.bin"))
        assertRefused(dir, ["adapter_model.bin", "safetensors"])
        try Data(repeating: 7, count: 5).write(to: dir.appendingPathComponent("adapter_model.safetensors"))
        assertRefused(dir, ["adapter_model.safetensors"])
    }

    /// A failed save (here: the weights path is a folder) leaves the good adapter as it was.
    func testFailedSaveKeepsTheOldAdapter() throws {
        let dir = try S.tempDir("adapter-atomic")
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try S.randomAdapter(model, rank: 2, alpha: 4, targets: [.q], seed: 3)
        try good.save(to: dir.path)
        let before = try Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))
        // A file where the folder should be: save must fail cleanly.
        let blocked = dir.appendingPathComponent("blocked")
        try Data().write(to: blocked)
        XCTAssertThrowsError(try good.save(to: blocked.path))
        // A read-only folder: the temporary file cannot be created; the old files stay.
        chmod(dir.path, 0o500)
        defer { chmod(dir.path, 0o700) }
        if getuid() != 0 {
            let other = try S.randomAdapter(model, rank: 2, alpha: 4, targets: [.v], seed: 4)
            XCTAssertThrowsError(try other.save(to: dir.path))
        }
        chmod(dir.path, 0o700)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("adapter_config.json")), before)
        XCTAssertEqual(try LoRAAdapter.load(from: dir.path, model: model).config.targets, [.q])
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.contains(".tmp-") })
    }
}
