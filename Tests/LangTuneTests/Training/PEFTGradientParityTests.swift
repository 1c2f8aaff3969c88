import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// LoRA gradients on one real batch against PyTorch + PEFT (float32), from the same initial
/// adapter (Tests/Reference/peft_grads.py, "lora init v1"): SmolLM2 (Llama) and Gemma 3.
final class PEFTGradientParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct LoRA: Decodable { var rank: Int; var alpha: Double; var targets: [String] }
        struct Init: Decodable { var b_scale: Double }
        struct Example: Decodable { var ids: [Int32]; var labels: [Int32] }
        struct Micro: Decodable { var examples: [Example] }
        struct Grad: Decodable { var name: String; var shape: [Int]; var values: [Float] }
        var lora: LoRA
        var init_adapter: Init
        var micro_batches: [Micro]
        var label_tokens: Int
        var loss: Double
        var grads: [Grad]
    }

    func testGradientsMatchPyTorchPEFT() throws {
        try check(backend: CPUBackend(), lossTolerance: 1e-4, gradTolerance: 1e-3)
    }

    /// Gemma 3 270M (Q4_K_M GGUF dequantized to float32 on both sides) on a batch LangTune itself
    /// exported (`train --export-batches`): the chat template, the scaled embeddings, the 1 + w
    /// norms, q/k norms, post-norms, GeGLU and the tied 262k-row head, all under PEFT's gradients.
    ///
    /// Measured (2026-12-03, avx2 and portable alike): loss within 6.6e-6, gradients within 3.9e-5
    /// (layer 0), 1.3e-4 (layer 9) and 5.4e-4 (layer 17, the last): eight times SmolLM2's, growing toward
    /// the output, while PyTorch's own float32 is within 6e-6 of float64 on every tensor. The source is
    /// not found yet: over all 252 tensors it grows smoothly with depth, and the inference pass has the
    /// graph's loss, so it lies in the shared forward computation (docs/ROADMAP.md); 2e-3 keeps a wrong
    /// formula (errors of 1e-2 and more) failing.
    func testGemma3GradientsMatchPyTorchPEFT() throws {
        // LANGTUNE_PEFT_GRADS_FIXTURE: a fixture of every tensor (`peft_grads.py --all-tensors`, not committed), to localize.
        let override = ProcessInfo.processInfo.environment["LANGTUNE_PEFT_GRADS_FIXTURE"].map { URL(fileURLWithPath: $0) }
        try check(backend: CPUBackend(), lossTolerance: 1e-4, gradTolerance: 2e-3,
                  model: TestPaths.gemma3GGUF, fixtureURL: override ?? TestPaths.fixture("train/gemma3_lora_grads.json"))
    }

    /// `--dtype bf16`: products with bfloat16 inputs (8 significant bits, relative rounding 2^-9) and
    /// float32 accumulation, against PEFT's float32. Measured: loss within 6.4e-4, gradients within
    /// 2.9e-2 (relative L2, worst tensor); the tolerances leave about 3x.
    func testBF16GradientsStayCloseToPyTorchPEFTFloat32() throws {
        guard lt_bf16_products_available() != 0 else { throw XCTSkip("no bf16 GEMM here (oneDNN + AVX512-BF16/AMX needed)") }
        try check(backend: CPUBackend(bf16: true), lossTolerance: 2e-3, gradTolerance: 1e-1)
    }

    func check(backend: CPUBackend, lossTolerance: Double, gradTolerance: Double,
               model modelFile: URL = TestPaths.smolLM2GGUF,
               fixtureURL: URL = TestPaths.fixture("train/smollm2_lora_grads.json")) throws {
        let path = try TestPaths.require(modelFile).path
        let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL))
        let files = try ModelFiles.load(path)
        let model = try LlamaModel(files: files, backend: backend)
        let targets = f.lora.targets.compactMap { LoRATarget(short: $0) }
        let config = LoRAConfig(rank: f.lora.rank, alpha: f.lora.alpha, dropout: 0, targets: targets)
        var layers: [[LoRATarget: LoRAWeights]] = []
        for i in 0..<files.config.numLayers {
            var l: [LoRATarget: LoRAWeights] = [:]
            for t in targets {
                let (o, inF) = t.shape(files.config)
                let a = TinyLlama3Tests.values(name: LoRAAdapter.peftName(layer: i, target: t, matrix: "A"), count: config.rank * inF,
                                               scale: 1 / Double(inF).squareRoot(), center: 0)
                let b = TinyLlama3Tests.values(name: LoRAAdapter.peftName(layer: i, target: t, matrix: "B"), count: o * config.rank,
                                               scale: f.init_adapter.b_scale, center: 0)
                l[t] = LoRAWeights(rank: config.rank, inFeatures: inF, outFeatures: o, a: FloatBuffer(a), b: FloatBuffer(b))
            }
            layers.append(l)
        }
        let adapter = LoRAAdapter(config: config, layers: layers)
        let batch = PackedBatch(f.micro_batches[0].examples.map { (ids: $0.ids, labels: $0.labels) })
        XCTAssertEqual(batch.targetCount, f.label_tokens)
        let grads = LoRAGradients(like: adapter)
        let scale = 1 / Float(batch.targetCount)
        let loss = LoRAGraph(model: model, adapter: adapter).run(batch, lossScale: scale, grads: grads) / Double(batch.targetCount)
        print("loss \(loss) vs \(f.loss): relative \(abs(loss - f.loss) / f.loss)")
        XCTAssertEqual(loss, f.loss, accuracy: lossTolerance * f.loss, "loss")
        for g in f.grads {
            // base_model.model.model.layers.{i}.{block}.{t}.lora_{A|B}.weight
            let parts = g.name.split(separator: ".")
            let layer = Int(parts[4])!, target = LoRATarget(rawValue: String(parts[6]))!, isA = parts[7] == "lora_A"
            let ours = isA ? grads.a[layer][target]! : grads.b[layer][target]!
            XCTAssertEqual(ours.count, g.values.count, g.name)
            var diff = 0.0, norm = 0.0
            for i in 0..<min(ours.count, g.values.count) {
                diff += pow(Double(ours.pointer[i]) - Double(g.values[i]), 2)
                norm += pow(Double(g.values[i]), 2)
            }
            let rel = (diff / norm).squareRoot()
            print("\(g.name): relative error \(rel)")
            XCTAssertLessThanOrEqual(rel, gradTolerance, g.name)
        }
    }
}
