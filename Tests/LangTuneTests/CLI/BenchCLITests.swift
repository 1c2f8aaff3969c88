import Foundation
import XCTest

/// `langtune bench memory` as a user runs it (a small shape, so it finishes in seconds).
final class BenchCLITests: XCTestCase {
    func testBenchMemoryReportsPeakAndStepTime() throws {
        let r = try CLI.run(["bench", "memory", "--shape", "smollm2-135m", "--method", "qlora", "--steps", "1", "--seq-len", "64",
                             "--threads", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").last)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let peak = try XCTUnwrap(j["peak_rss_bytes"] as? Int)
        let frozen = try XCTUnwrap(j["frozen_weight_bytes"] as? Int)
        // SmolLM2-135M: 106M projection weights as NF4 (~0.52 byte each) + 28M bf16 embedding values.
        let nf4Bytes: Double = 106_168_320 * (0.5 + 1.0 / 64 + 4.0 / 16384)
        let otherBytes: Double = 49_152 * 576 * 2 + 61 * 576 * 4
        XCTAssertEqual(Double(frozen), nf4Bytes + otherBytes, accuracy: 2e6)
        XCTAssertGreaterThan(peak, frozen)
        XCTAssertGreaterThan(try XCTUnwrap(j["seconds_per_step"] as? Double), 0)
        XCTAssertEqual(j["lora_parameters"] as? Int, 4_884_480)
        let losses = try XCTUnwrap(j["losses"] as? [Double])
        XCTAssertEqual(losses.count, 1)
        XCTAssertEqual(losses[0], log(49_152.0), accuracy: 0.2)

        let bad = try CLI.run(["bench", "memory", "--shape", "llama-9000"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown --shape llama-9000"), bad.stderr)
    }
}
