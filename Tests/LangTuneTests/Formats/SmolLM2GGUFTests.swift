import Foundation
import XCTest
@testable import LangTune

/// The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF).
final class SmolLM2GGUFTests: XCTestCase {
    func testConfigTensorsAndTokenizer() throws {
        let path = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let m = try ModelFiles.load(path)
        let c = m.config
        XCTAssertEqual(c.architecture, "llama")
        XCTAssertEqual(c.numLayers, 30)
        XCTAssertEqual(c.hiddenSize, 576)
        XCTAssertEqual(c.intermediateSize, 1536)
        XCTAssertEqual(c.numHeads, 9)
        XCTAssertEqual(c.numKVHeads, 3)
        XCTAssertEqual(c.headDim, 64)
        XCTAssertEqual(c.vocabSize, 49152)
        XCTAssertEqual(c.ropeTheta, 100000)
        XCTAssertEqual(c.rmsNormEps, 1e-5)
        XCTAssertNil(c.ropeScaling)
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertFalse(c.attentionBias)
        XCTAssertEqual(c.eosTokenIds.first, 2, "<|im_end|>")
        print("SmolLM2 config: \(c)")
        XCTAssertEqual(m.parameterCount, 134_515_008)
        XCTAssertEqual(m.dtypeHistogram, [.q4_1: 210, .f32: 61, .q8_0: 1])
        XCTAssertEqual(m.tensors["model.embed_tokens.weight"]?.dtype, .q8_0)
        XCTAssertNil(m.tensors["lm_head.weight"])
        guard case .gguf(let meta, let file) = m.tokenizer else { return XCTFail("expected GGUF tokenizer metadata") }
        XCTAssertEqual(file, path)
        XCTAssertEqual(meta["tokenizer.ggml.model"]?.string, "gpt2")
        XCTAssertEqual(meta["tokenizer.ggml.pre"]?.string, "smollm")
        XCTAssertEqual(meta["tokenizer.ggml.tokens"]?.array?.count, 49152)
        let template = try XCTUnwrap(m.chatTemplate)
        XCTAssertTrue(template.contains("<|im_start|>"))
        XCTAssertTrue(template.contains("You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
    }

    /// HF q/k rows are GGUF rows reordered by the formula: HF row h·hd + j·hd/2 + i = GGUF row h·hd + 2i + j.
    func testQKRowsFollowTheFormula() throws {
        let path = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let m = try ModelFiles.load(path)
        let g = try GGUFFile(path: path)
        let hd = 64, cols = 576
        for layer in [0, 17, 29] {
            for (proj, heads) in [("q", 9), ("k", 3)] {
                let raw = try dequantize(g.tensor("blk.\(layer).attn_\(proj).weight"))
                let hf = try dequantize(XCTUnwrap(m.tensors["model.layers.\(layer).self_attn.\(proj)_proj.weight"]))
                XCTAssertEqual(hf.count, heads * hd * cols)
                XCTAssertNotEqual(hf, raw, "the permutation moves rows")
                var mismatched = 0
                for h in 0..<heads { for i in 0..<(hd / 2) { for j in 0..<2 {
                    let hfRow = h * hd + j * hd / 2 + i, ggRow = h * hd + 2 * i + j
                    if hf[hfRow * cols..<(hfRow + 1) * cols] != raw[ggRow * cols..<(ggRow + 1) * cols] { mismatched += 1 }
                } } }
                XCTAssertEqual(mismatched, 0, "layer \(layer) \(proj)")
            }
            // v is not permuted.
            XCTAssertEqual(try dequantize(g.tensor("blk.\(layer).attn_v.weight")),
                           try dequantize(XCTUnwrap(m.tensors["model.layers.\(layer).self_attn.v_proj.weight"])))
        }
    }

    /// Load plus dequantization of every weight, timed (well under a second in release).
    func testLoadAndDequantizeAllTimed() throws {
        let path = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let start = Date()
        let m = try ModelFiles.load(path)
        let loaded = Date()
        var elements = 0
        var sumAbs: Double = 0
        for (_, t) in m.tensors.sorted(by: { $0.key < $1.key }) {
            let v = try dequantize(t)
            elements += v.count
            // Sampled, so that a debug build does not spend its time here.
            var s: Float = 0
            for k in stride(from: 0, to: v.count, by: 997) { s += abs(v[k]) }
            XCTAssertTrue(s.isFinite, t.name)
            sumAbs += Double(s)
        }
        let done = Date()
        XCTAssertEqual(elements, 134_515_008)
        XCTAssertGreaterThan(sumAbs, 0)
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        print(String(format: "SmolLM2 load %.1f ms, dequantize %d weights %.1f ms (%@ build)",
                     loaded.timeIntervalSince(start) * 1000, elements, done.timeIntervalSince(loaded) * 1000, build))
    }
}
