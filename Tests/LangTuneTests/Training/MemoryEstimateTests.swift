import Foundation
import XCTest
@testable import LangTune

/// `inspect --memory`: the parts follow what training allocates. Measured on this machine
/// (`/usr/bin/time -v langtune train --model default --data …/tquad/train-v0.1.json --max-examples 200
/// --steps 4 --batch-size 2 [--method qlora --qlora-base nf4 --qlora-cache none]`, 2026-11-27, after the
/// norms and SwiGLU output became recomputed and the workspace stopped growing with batch length):
/// LoRA 1.57 GB, QLoRA 1.21 GB peak RSS; the estimates must stay within 10% of those.
final class MemoryEstimateTests: XCTestCase {
    func testSmolLM2EstimatesMatchMeasuredPeaks() throws {
        let files = try ModelFiles.load(try TestPaths.require(TestPaths.smolLM2GGUF).path)
        let lora = MemoryEstimate.training(config: files.config, method: .lora, rank: 16, seqLen: 512, batchSize: 2)
        let qlora = MemoryEstimate.training(config: files.config, method: .qlora, rank: 16, seqLen: 512, batchSize: 2)
        XCTAssertEqual(Double(lora.total), 1.57e9, accuracy: 0.157e9)
        XCTAssertEqual(Double(qlora.total), 1.21e9, accuracy: 0.121e9)
        let adapter = try LoRAAdapter(config: LoRAConfig(rank: 16, alpha: 32), model: files.config, seed: 0)
        XCTAssertEqual(lora.parts.first { $0.name.hasPrefix("LoRA parameters") }?.bytes, 4 * adapter.parameterCount)
        // Checkpointing keeps one layer plus each layer's input.
        let ckpt = MemoryEstimate.training(config: files.config, method: .lora, rank: 16, seqLen: 512, batchSize: 2, checkpointActivations: true)
        XCTAssertLessThan(ckpt.total, lora.total - 550_000_000)
    }

    func testEightBillionShapeWithQLoRA() {
        let e = MemoryEstimate.training(config: .llama3_8B, method: .qlora, rank: 16, seqLen: 512, batchSize: 1, checkpointActivations: true)
        let frozen = e.parts[0].bytes
        // 32 × (2·4096² + 2·4096·1024 + 3·4096·14336) = 6.98e9 weights at ~0.516 bytes.
        XCTAssertEqual(Double(frozen), 6.98e9 * 0.5159, accuracy: 0.01e9)
        XCTAssertEqual(e.parts[1].bytes, 2 * 128_256 * 4096 * 4 + 65 * 4096 * 4)
    }
}
