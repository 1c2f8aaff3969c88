import Foundation
import XCTest

/// `inspect --memory --ranks` and `bench memory --nodes`: the distributed case on paper.
final class ScalingCLITests: XCTestCase {
    func json(_ stdout: String) throws -> [String: Any] {
        let line = try XCTUnwrap(stdout.split(separator: "\n").last)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// Llama-3-8B, LoRA r16 on all seven projections: 41,943,040 gradients, 167,772,160 bytes per step.
    func testInspectMemoryPrintsTheExchangeAndTheScaling() throws {
        let args = ["inspect", "shape:llama3-8b", "--memory", "--method", "qlora", "--batch-size", "1", "--ranks", "2,64",
                    "--bandwidth", "10", "--seconds-per-sequence", "153.3", "--global-batch", "64"]
        let r = try CLI.run(args + ["--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let parallel = try XCTUnwrap(try json(r.stdout)["data_parallel"] as? [String: Any])
        XCTAssertEqual((parallel["model"] as? [String: Any])?["gradientBytes"] as? Int, 167_772_160)
        let rows = try XCTUnwrap(parallel["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["ranks"] as? Int }, [2, 64])
        // 64 ranks, one sequence each: 153.3 s of compute plus the ring allreduce of 2·63/64 · 167.8 MB at 10 Gb/s.
        let step = try XCTUnwrap(rows[1]["step_seconds"] as? Double)
        let transfer: Double = 2.0 * 63.0 / 64.0 * 167_772_160.0 / 1.25e9
        let latency: Double = 10.0 * 2.0 * 63.0 * 50e-6  // ten 16 MB messages
        XCTAssertEqual(step, 153.3 + transfer + latency, accuracy: 1e-6)
        let text = try CLI.run(args)
        XCTAssertTrue(text.stdout.contains("167.8 MB of LoRA gradients summed per optimizer step"), text.stdout)
        let plain = try CLI.run(["inspect", "shape:llama3-8b", "--memory"])
        XCTAssertFalse(plain.stdout.contains("data parallel"), "no scaling unless asked")
        let bad = try CLI.run(args.map { $0 == "2,64" ? "2,x" : $0 })
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--ranks must be a comma-separated list"), bad.stderr)
    }

    func testBenchMemoryScalesItsMeasuredStep() throws {
        let r = try CLI.run(["bench", "memory", "--shape", "smollm2-135m", "--method", "qlora", "--steps", "1", "--seq-len", "32",
                             "--threads", "2", "--nodes", "2,8", "--bandwidth", "10,100", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try json(r.stdout)
        XCTAssertEqual(j["gradient_bytes_per_step"] as? Int, 4 * 4_884_480)
        XCTAssertEqual(j["global_batch"] as? Int, 8)
        let rows = try XCTUnwrap(j["scaling"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 4)
        let perStep = try XCTUnwrap(j["seconds_per_step"] as? Double)
        for row in rows {
            let n = try XCTUnwrap(row["ranks"] as? Int)
            // One sequence per step measured; 8 per global step split over n ranks.
            XCTAssertGreaterThan(try XCTUnwrap(row["step_seconds"] as? Double), perStep * Double(8 / n))
            XCTAssertLessThanOrEqual(try XCTUnwrap(row["speedup"] as? Double), Double(n))
        }
    }
}
