import Foundation
import XCTest
@testable import LangTune

/// LoRA training on the real Gemma 3 270M GGUF: the graph's loss equals the inference model's on
/// the same tokens, and a few AdamW steps on one batch lower it.
final class Gemma3TrainingTests: XCTestCase {
    func testGraphMatchesInferenceAndStepsLowerTheLoss() throws {
        let lm = try LanguageModel(TestPaths.require(TestPaths.gemma3GGUF).path, backend: CPUBackend(threads: Threads(2)))
        let text = "İstanbul, Türkiye'nin en kalabalık şehridir. Boğaz, şehri Avrupa ve Asya yakalarına ayırır. "
            + "The Bosphorus divides the city between Europe and Asia, and ferries cross it all day."
        let ids = lm.tokenizer.encode(text, addSpecialTokens: true).map { Int32($0) }
        XCTAssertGreaterThan(ids.count, 40)
        let batch = PackedBatch([(ids: ids, labels: ids)])
        let config = lm.model.config
        let adapter = try LoRAAdapter(config: LoRAConfig(rank: 8, alpha: 16), model: config, seed: 3)

        // A fresh adapter (B = 0) is the base model: the graph's loss is the inference pass's.
        let graph = LoRAGraph(model: lm.model, adapter: adapter)
        let graphLoss = graph.run(batch, lossScale: 1, grads: nil)
        let inference = Gemma3GraphGradientTests.inferenceLoss(lm.model, batch)
        XCTAssertEqual(graphLoss, inference, accuracy: 1e-4 * inference, "graph \(graphLoss) vs inference \(inference) nats")

        var options = AdamWOptions()
        options.learningRate = 2e-3
        let optimizer = LoRAOptimizer(adapter: adapter, options: options)
        let grads = LoRAGradients(like: adapter)
        let targets = Double(batch.targetCount)
        var losses: [Double] = []
        var seconds = 0.0
        for _ in 0..<4 {
            grads.zero()
            let start = Date()
            losses.append(graph.run(batch, lossScale: 1 / Float(targets), grads: grads) / targets)
            seconds += Date().timeIntervalSince(start)
            _ = optimizer.apply(grads, lr: options.learningRate)
        }
        let after = graph.run(batch, lossScale: 1, grads: nil) / targets
        print(String(format: "gemma3 270M LoRA r=8: loss %.4f -> %.4f over 4 steps of %d tokens, %.0f tokens/s (forward + backward)",
                     losses[0], after, ids.count, Double(4 * ids.count) / seconds))
        XCTAssertEqual(losses[0], graphLoss / targets, accuracy: 1e-9 * graphLoss, "training-mode forward is the eval forward")
        XCTAssertLessThan(after, losses[0] - 0.05, "losses \(losses) then \(after)")
        // The trained adapter, applied by the inference pass, gives the graph's loss.
        lm.model.adapter = adapter
        let adapted = Gemma3GraphGradientTests.inferenceLoss(lm.model, batch) / targets
        XCTAssertEqual(after, adapted, accuracy: 1e-4 * adapted, "graph \(after) vs inference \(adapted) with the trained adapter")
    }
}
