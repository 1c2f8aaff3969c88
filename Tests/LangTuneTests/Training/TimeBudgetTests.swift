import Foundation
import XCTest
@testable import LangTune

/// `--time-budget`: a run ends on time, validates at the end, and its schedule decays over the time.
final class TimeBudgetTests: XCTestCase {
    let tiny = LlamaConfig(architecture: "llama", hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4,
                           numKVHeads: 2, vocabSize: 300, rmsNormEps: 1e-5, ropeTheta: 10_000,
                           maxPositionEmbeddings: 256, tieWordEmbeddings: false)

    func testRunEndsWithinTheBudgetWithAFinalValidationAndADecayedRate() throws {
        let model = LlamaModel.synthetic(config: tiny, projections: .f32, seed: 2, backend: CPUBackend(threads: Threads(1)))
        var opts = TrainingOptions()
        opts.lora = LoRAConfig(rank: 4, alpha: 8)
        opts.optimizer.learningRate = 1e-2
        opts.schedule = .cosine
        opts.timeBudget = 3
        let examples = (0..<8).map { (k: Int) -> TokenizedExample in
            let ids: [Int32] = (0..<48).map { (t: Int) -> Int32 in Int32((t * 37 + k) % 300) }
            return TokenizedExample(ids: ids, labels: ids, origin: "t:\(k)")
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-budget-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let adapter = try LoRAAdapter(config: opts.lora, model: tiny, seed: 0)
        let trainer = Trainer(model: model, adapter: adapter, train: Array(examples.prefix(6)), validation: Array(examples.suffix(2)),
                              options: opts, output: out)
        XCTAssertEqual(trainer.totalSteps, Int.max, "no step count: time decides")
        let t0 = Date()
        var seen: [TrainingProgress] = []
        let summary = try trainer.run(resume: false, progress: { seen.append($0) }, shouldStop: { false })
        let wall = Date().timeIntervalSince(t0)
        XCTAssertFalse(summary.interrupted)
        XCTAssertGreaterThan(summary.steps, 5, "steps go on over several epochs (6 examples, batch 4)")
        XCTAssertEqual(summary.totalSteps, summary.steps)
        XCTAssertLessThan(summary.seconds, 3.0 + 0.5, "the loop ends on time")
        XCTAssertLessThan(wall, 3.0 + 2.0)
        XCTAssertGreaterThan(summary.seconds, 3.0 * 0.6, "and does not stop long before it")
        // The last step validated, and the rate fell over the time towards 0.
        XCTAssertNotNil(seen.last?.valLoss)
        XCTAssertNotNil(summary.bestValLoss)
        XCTAssertLessThan(seen.last!.lr, 0.25 * 1e-2)
        XCTAssertGreaterThan(seen.first!.lr, 0.9 * 1e-2)
        XCTAssertTrue(zip(seen, seen.dropFirst()).allSatisfy { $0.lr >= $1.lr }, "cosine decays monotonically")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("adapter_model.safetensors").path))
    }

    func testScheduleOverProgress() {
        XCTAssertEqual(LRSchedule.cosine.factor(progress: 0), 1)
        XCTAssertEqual(LRSchedule.cosine.factor(progress: 0.5), 0.5, accuracy: 1e-12)
        XCTAssertEqual(LRSchedule.cosine.factor(progress: 2), 0)
        XCTAssertEqual(LRSchedule.linear.factor(progress: 0.25), 0.75)
        XCTAssertEqual(LRSchedule.cosine.factor(step: 5, total: 10, warmup: 0), LRSchedule.cosine.factor(progress: 0.5))
    }
}
