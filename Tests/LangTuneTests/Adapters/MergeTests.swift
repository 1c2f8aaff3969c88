import Foundation
import XCTest
@testable import LangTune

/// Merging an adapter into a model and exporting it: the merge arithmetic against
/// float64, and exported files reloaded in LangTune against the same model merged in
/// memory (same LlamaModel code on both sides).
final class MergeTests: XCTestCase {
    typealias S = AdapterTestSupport

    func testMergeMathMatchesFloat64() throws {
        var rng = SplitMix64(seed: 42)
        let out = 48, inF = 40, r = 3
        let a = (0..<(r * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let b = (0..<(out * r)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let w0 = (0..<(out * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let lora = LoRAWeights(rank: r, inFeatures: inF, outFeatures: out, a: FloatBuffer(a), b: FloatBuffer(b))
        let scale = LoRAAdapter.peftScale(alpha: 7, rank: r, rsLoRA: false)
        var w = w0
        ModelExporter.addDelta(&w, lora, scale: scale, threads: Threads(2))
        var maxErr = 0.0, changed = 0
        for o in 0..<out {
            for i in 0..<inF {
                var s = 0.0
                for k in 0..<r { s += Double(b[o * r + k]) * Double(a[k * inF + i]) }
                let exact = Double(w0[o * inF + i]) + 7.0 / 3.0 * s
                let err = abs(Double(w[o * inF + i]) - exact)
                // One float32 rounding of the float64 result: at most half an ulp.
                XCTAssertLessThanOrEqual(err, Double(Float(exact).ulp) / 2 + 1e-12, "[\(o), \(i)]")
                maxErr = max(maxErr, err)
                if w[o * inF + i] != w0[o * inF + i] { changed += 1 }
            }
        }
        XCTAssertGreaterThan(changed, out * inF * 9 / 10)
        XCTAssertLessThan(maxErr, 1e-6)
    }

    /// The tiny Llama-3 model (untied head, Llama 3 RoPE scaling) with a rank-4 adapter
    /// on every target, exported as HF (f32, f16) and GGUF (f32, f16, q8_0).
    func testTinyLlama3ExportsReloadWithSameLogits() throws {
        let folder = try S.tinyLlama3Folder()
        let out = try S.tempDir("tiny-llama3-merged")
        defer {
            try? FileManager.default.removeItem(at: folder)
            try? FileManager.default.removeItem(at: out)
        }
        let files = try ModelFiles.load(folder.path)
        let adapter = try S.randomAdapter(files.config, rank: 4, alpha: 8, targets: LoRATarget.allCases, seed: 11, amplitude: 0.2)
        let exporter = try ModelExporter(files: files, adapter: adapter)
        let merged = try LlamaModel(files: exporter.mergedFiles())
        let base = try LlamaModel(files: files)
        let ids = [128000, 791, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679, 13, 220, 4513, 1774]
        let want = S.logits(merged, ids)
        // The adapter must matter, or the comparisons below prove nothing.
        XCTAssertGreaterThan(S.relativeError(S.logits(base, ids), want), 1e-3)

        let cases: [(ExportFormat, DType, String, Double)] = [
            (.hf, .f32, "hf32", 1e-6), (.hf, .f16, "hf16", 5e-3),
            (.gguf, .f32, "f32.gguf", 1e-6), (.gguf, .f16, "f16.gguf", 5e-3), (.gguf, .q8_0, "q8.gguf", 3e-2),
        ]
        for (format, dtype, name, tolerance) in cases {
            let path = out.appendingPathComponent(name).path
            try exporter.write(format: format, to: path, dtype: dtype)
            let reloaded = try ModelFiles.load(path)
            XCTAssertEqual(reloaded.config.ropeScaling, files.config.ropeScaling, name)
            XCTAssertEqual(reloaded.config.tieWordEmbeddings, false, name)
            XCTAssertEqual(reloaded.config.numKVHeads, 2, name)
            XCTAssertEqual(Set(reloaded.config.eosTokenIds), [128001, 128009], name)
            let got = S.logits(try LlamaModel(files: reloaded), ids)
            let err = S.relativeError(got, want)
            print("tiny llama3 \(name): relative error \(err)")
            XCTAssertLessThanOrEqual(err, tolerance, name)
            if dtype == .f32 {
                // f32 stores the merged weights exactly: identical logits.
                XCTAssertEqual(got, want, name)
            }
            // Tokenizer: same ids as the source's tokenizer.json.
            let tok = try Tokenizer(source: reloaded.tokenizer)
            let src = try Tokenizer(source: files.tokenizer)
            for text in try TokenizerFixtures.hardCases().prefix(40) {
                XCTAssertEqual(tok.encode(text, addSpecialTokens: true), src.encode(text, addSpecialTokens: true), "\(name): \(text)")
            }
            XCTAssertEqual(reloaded.chatTemplate, files.chatTemplate, name)
        }
        // HF f32 weights are the merged values bit for bit; untouched tensors are copied.
        let hf = try ModelFiles.load(out.appendingPathComponent("hf32").path)
        for name in ["model.layers.1.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight"] {
            XCTAssertEqual(try dequantize(hf.tensors[name]!), try exporter.values(name), name)
        }
        XCTAssertNotEqual(try exporter.values("model.layers.1.mlp.down_proj.weight"),
                          try dequantize(files.tensors["model.layers.1.mlp.down_proj.weight"]!))
        // GGUF q/k rows are in llama.cpp order in the file and come back in HF order.
        let gguf = try GGUFFile(path: out.appendingPathComponent("f32.gguf").path)
        XCTAssertEqual(gguf.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(gguf.metadata["general.alignment"]?.int, 32)
        XCTAssertEqual(gguf.metadata["tokenizer.ggml.pre"]?.string, "llama-bpe")
        let rawQ = try dequantize(try gguf.tensor("blk.0.attn_q.weight"))
        let hfQ = try exporter.values("model.layers.0.self_attn.q_proj.weight")
        let hd = 16, inF = 64
        // GGUF row h·hd + 2i + j = HF row h·hd + j·hd/2 + i
        for (h, i, j) in [(0, 0, 1), (2, 3, 0), (3, 7, 1)] {
            XCTAssertEqual(Array(rawQ[((h * hd + 2 * i + j) * inF)..<((h * hd + 2 * i + j + 1) * inF)]),
                           Array(hfQ[((h * hd + j * hd / 2 + i) * inF)..<((h * hd + j * hd / 2 + i + 1) * inF)]))
        }
        let q8 = try GGUFFile(path: out.appendingPathComponent("q8.gguf").path)
        XCTAssertEqual(q8.tensorInfo("blk.0.ffn_down.weight")?.dtype, .q8_0)
        XCTAssertEqual(q8.tensorInfo("token_embd.weight")?.dtype, .q8_0)
        XCTAssertEqual(q8.tensorInfo("blk.0.attn_norm.weight")?.dtype, .f32)
        XCTAssertEqual(q8.tensorInfo("rope_freqs.weight")?.dtype, .f32)
    }

    /// The real SmolLM2 GGUF (Q4_1, tied embeddings, smollm pre-tokenizer) with a small
    /// adapter, exported as HF f32 and GGUF f16, reloaded in LangTune.
    func testSmolLM2ExportsReloadWithSameLogits() throws {
        let path = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let out = try S.tempDir("smollm2-merged")
        defer { try? FileManager.default.removeItem(at: out) }
        let files = try ModelFiles.load(path)
        let adapter = try S.randomAdapter(files.config, rank: 2, alpha: 4, targets: [.q, .v, .down], seed: 5, amplitude: 0.1)
        let exporter = try ModelExporter(files: files, adapter: adapter)
        let merged = try LlamaModel(files: exporter.mergedFiles())
        let tokenizer = try Tokenizer(source: files.tokenizer)
        let ids = tokenizer.encode("<|im_start|>user\nTürkiye'nin başkenti neresidir?<|im_end|>\n<|im_start|>assistant\n")
        let want = S.logits(merged, ids)
        XCTAssertGreaterThan(S.relativeError(S.logits(try LlamaModel(files: files), ids), want), 1e-3)

        for (format, dtype, name, tolerance) in [(ExportFormat.hf, DType.f32, "hf", 1e-6), (.gguf, .f16, "m.gguf", 1e-2)] {
            let p = out.appendingPathComponent(name).path
            try exporter.write(format: format, to: p, dtype: dtype)
            let reloaded = try ModelFiles.load(p)
            XCTAssertEqual(reloaded.config.tieWordEmbeddings, true)
            XCTAssertEqual(reloaded.config.vocabSize, 49152)
            let err = S.relativeError(S.logits(try LlamaModel(files: reloaded), ids), want)
            print("SmolLM2 \(name): relative error \(err)")
            XCTAssertLessThanOrEqual(err, tolerance, name)
            let tok = try Tokenizer(source: reloaded.tokenizer)
            XCTAssertEqual(tok.encode("<|im_start|>user\nTürkiye'nin başkenti neresidir?<|im_end|>\n<|im_start|>assistant\n"), ids)
            XCTAssertEqual(tok.eosTokenId, 2)
            XCTAssertEqual(reloaded.chatTemplate, files.chatTemplate)
        }
        let hf = try ModelFiles.load(out.appendingPathComponent("hf").path)
        XCTAssertNil(hf.tensors["lm_head.weight"], "tied: no lm_head")
        XCTAssertEqual(hf.tensors["model.layers.0.self_attn.q_proj.weight"]?.dtype, .f32)
        let gguf = try GGUFFile(path: out.appendingPathComponent("m.gguf").path)
        XCTAssertEqual(gguf.tensorInfo("blk.0.attn_q.weight")?.dtype, .f16)
        XCTAssertEqual(gguf.tensorInfo("blk.0.attn_norm.weight")?.dtype, .f32)
        XCTAssertNil(gguf.tensorInfo("output.weight"))
        XCTAssertEqual(gguf.metadata["tokenizer.ggml.pre"]?.string, "smollm")
        XCTAssertEqual(gguf.metadata["general.file_type"]?.int, 1)
    }

    func testRefusesValuesF16CannotHold() throws {
        XCTAssertThrowsError(try ModelExporter.encode([1, -70000], as: .f16, name: "w")) {
            XCTAssertTrue("\($0)".contains("-70000") && "\($0)".contains("F16"), "\($0)")
        }
        XCTAssertEqual(try ModelExporter.encode([1, -70000], as: .bf16, name: "w").count, 4)
        XCTAssertEqual(try ModelExporter.encode([Float](repeating: 70000, count: 32), as: .q8_0, name: "w").count, 34)
        XCTAssertEqual(try ModelExporter.encode([65504, -2], as: .f16, name: "w"), [0xFF, 0x7B, 0x00, 0xC0])
    }

    func testRefusesAdapterOfAnotherModel() throws {
        let other = LlamaConfig(architecture: "llama", hiddenSize: 16, intermediateSize: 48, numLayers: 3, numHeads: 4,
                                numKVHeads: 2, headDim: 4, vocabSize: 100, rmsNormEps: 1e-5, ropeTheta: 10000,
                                maxPositionEmbeddings: 128, tieWordEmbeddings: true)
        let adapter = try S.randomAdapter(other, rank: 2, alpha: 4, targets: [.q], seed: 1)
        let files = ModelFiles(path: "m", format: .safetensors, config: S.smallConfig, tensors: [:],
                               tokenizer: .gguf(metadata: [:], file: "m"), chatTemplate: nil, generationDefaults: nil)
        XCTAssertThrowsError(try ModelExporter(files: files, adapter: adapter)) { error in
            XCTAssertTrue("\(error)".contains("q_proj"), "\(error)")
        }
    }
}
