import Foundation
import XCTest
@testable import LangTune

/// `langtune train` as a user runs it, on the tiny random Llama-3 model:
/// exact resume after SIGKILL, and clear errors for bad input.
final class TrainCLITests: XCTestCase {
    var sample: String { TestPaths.repoRoot.appendingPathComponent("data/sample/tr_qa.json").path }

    func trainArgs(_ model: URL, _ out: URL, extra: [String] = []) -> [String] {
        ["train", "--model", model.path, "--data", sample, "--output", out.path, "--steps", "24", "--batch-size", "2",
         "--rank", "4", "--alpha", "8", "--dropout", "0.1", "--lr", "1e-3", "--save-every", "3", "--seed", "7",
         "--threads", "2"] + extra
    }

    /// A finished run leaves report.html: the loss curves and the base and trained answers
    /// to validation questions.
    func testRunWritesAReport() throws {
        let model = try AdapterTestSupport.tinyLlama3Folder()
        let dir = try AdapterTestSupport.tempDir("report")
        defer { try? FileManager.default.removeItem(at: dir); try? FileManager.default.removeItem(at: model) }
        let out = dir.appendingPathComponent("run")
        let r = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", out.path, "--steps", "3", "--batch-size", "2",
                             "--rank", "2", "--val-split", "0.25", "--eval-every", "3", "--report-examples", "2", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2, "loss chart and metric bars")
        XCTAssertTrue(html.contains("<th>base</th><th>trained</th>"))
        XCTAssertEqual(html.components(separatedBy: "<tr><td>").count - 1, 2 + 9, "2 sample rows and 9 metric rows")
    }

    /// QLoRA on the tiny model: both frozen-base choices train and write a normal PEFT adapter;
    /// a safetensors (float) source has no blocks of its own, so `source` quantizes it to NF4 too.
    func testQLoRARunsWriteAdapters() throws {
        let model = try AdapterTestSupport.tinyLlama3Folder()
        let dir = try AdapterTestSupport.tempDir("qlora")
        defer { try? FileManager.default.removeItem(at: dir); try? FileManager.default.removeItem(at: model) }
        let cache = dir.appendingPathComponent("cache").path
        for (run, base, cacheArg, expect) in [("nf4", "nf4", cache, "quantized and cached"), ("nf4-again", "nf4", cache, "read from the cache"),
                                              ("nf4-uncached", "nf4", "none", ""), ("source", "source", "none", "")] {
            let out = dir.appendingPathComponent(run)
            let r = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", out.path, "--steps", "2", "--batch-size", "2",
                                 "--rank", "2", "--method", "qlora", "--qlora-base", base, "--qlora-cache", cacheArg, "--threads", "2"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("QLoRA"), r.stderr)
            XCTAssertTrue(expect.isEmpty ? !r.stderr.contains("NF4 base") && !r.stderr.contains("NF4 cache") : r.stderr.contains(expect), r.stderr)
            let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("train_config.json"))) as? [String: Any])
            XCTAssertEqual(config["method"] as? String, "qlora")
            // A safetensors (float) source has no blocks of its own: every choice is NF4.
            XCTAssertEqual(config["frozenBase"] as? String, "nf4, double-quantized")
            let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let last = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
            XCTAssertTrue((last["loss"] as? Double)?.isFinite ?? false)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("adapter_model.safetensors").path))
        }
        // The cached base trains exactly as the freshly quantized one.
        let bytes = try ["nf4", "nf4-again", "nf4-uncached"].map { try Data(contentsOf: dir.appendingPathComponent($0).appendingPathComponent("adapter_model.safetensors")) }
        XCTAssertEqual(bytes[0], bytes[1])
        XCTAssertEqual(bytes[0], bytes[2])
        // Using the adapter runs the base it was trained on (NF4) unless told otherwise.
        let adapterDir = dir.appendingPathComponent("nf4").path
        let auto = try CLI.run(["score", "--model", model.path, "--adapter", adapterDir, "--json", "--", "Merhaba dünya"])
        let asNF4 = try CLI.run(["score", "--model", model.path, "--adapter", adapterDir, "--quantize", "nf4", "--json", "--", "Merhaba dünya"])
        let stored = try CLI.run(["score", "--model", model.path, "--adapter", adapterDir, "--quantize", "none", "--json", "--", "Merhaba dünya"])
        XCTAssertEqual(auto.status, 0, auto.stderr)
        XCTAssertTrue(auto.stderr.contains("trained on an NF4 base"), auto.stderr)
        XCTAssertFalse(stored.stderr.contains("NF4"), stored.stderr)
        XCTAssertEqual(auto.stdout, asNF4.stdout)
        XCTAssertNotEqual(auto.stdout, stored.stdout)
        let bad = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", dir.appendingPathComponent("x").path,
                               "--method", "qlora", "--qlora-base", "int3"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--qlora-base must be auto, nf4 or source"), bad.stderr)
    }

    func testKilledRunResumesToTheSameAdapterBytes() throws {
        let model = try AdapterTestSupport.tinyLlama3Folder()
        let dir = try AdapterTestSupport.tempDir("resume")
        defer { try? FileManager.default.removeItem(at: dir); try? FileManager.default.removeItem(at: model) }
        let a = dir.appendingPathComponent("straight"), b = dir.appendingPathComponent("killed")

        let straight = try CLI.run(trainArgs(model, a))
        XCTAssertEqual(straight.status, 0, straight.stderr)

        // Start the same run, kill -9 it once a checkpoint past step 3 exists, resume it.
        let p = Process()
        p.executableURL = try CLI.binary()
        p.arguments = trainArgs(model, b)
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let state = b.appendingPathComponent("checkpoint/state.json")
        var killedAt: Int? = nil
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline {
            if let d = try? Data(contentsOf: state), let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
               let step = obj["step"] as? Int, step >= 3 {
                kill(p.processIdentifier, SIGKILL)
                killedAt = step
                break
            }
            usleep(2000)
        }
        p.waitUntilExit()
        let killed = try XCTUnwrap(killedAt, "the run finished before it could be killed")
        XCTAssertLessThan(killed, 24)
        let resumed = try CLI.run(trainArgs(model, b, extra: ["--resume"]))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let bytesA = try Data(contentsOf: a.appendingPathComponent("adapter_model.safetensors"))
        let bytesB = try Data(contentsOf: b.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertEqual(bytesA, bytesB, "killed at step \(killed), resumed: adapter bytes differ")
        // The loss went down, and the metrics file has one line per step.
        let lines = try String(contentsOf: b.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 24)
    }

    /// `--time-budget`: a run on time, with its final validation; malformed durations are refused by name.
    func testTimeBudget() throws {
        let model = try AdapterTestSupport.tinyLlama3Folder()
        let dir = try AdapterTestSupport.tempDir("budget")
        defer { try? FileManager.default.removeItem(at: dir); try? FileManager.default.removeItem(at: model) }
        let out = dir.appendingPathComponent("run")
        let t0 = Date()
        var r = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", out.path, "--time-budget", "5s",
                             "--batch-size", "2", "--rank", "2", "--val-split", "0.25", "--report-examples", "0", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("for 00:05"), r.stderr)
        XCTAssertTrue(r.stderr.contains("validation loss: base"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 60)
        let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(lines.last!.contains("val_loss"), "the last step validated")
        for bad in ["5x", "m", "1h30", "-2m", "0s"] {
            r = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", dir.appendingPathComponent("o").path, "--time-budget", bad])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("--time-budget"), bad + ": " + r.stderr)
        }
    }

    func testBadInputGivesClearErrorsAndKeepsGoodOutput() throws {
        let model = try AdapterTestSupport.tinyLlama3Folder()
        let dir = try AdapterTestSupport.tempDir("train-errors")
        defer { try? FileManager.default.removeItem(at: dir); try? FileManager.default.removeItem(at: model) }

        let bad = dir.appendingPathComponent("bad.jsonl")
        try "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n\n{\"messages\": [oops\n"
            .write(to: bad, atomically: true, encoding: .utf8)
        var r = try CLI.run(["train", "--model", model.path, "--data", bad.path, "--output", dir.appendingPathComponent("o1").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bad.jsonl:line 3"), r.stderr)

        let empty = dir.appendingPathComponent("empty.jsonl")
        try "".write(to: empty, atomically: true, encoding: .utf8)
        r = try CLI.run(["train", "--model", model.path, "--data", empty.path, "--format", "messages", "--output", dir.appendingPathComponent("o2").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("empty.jsonl") && r.stderr.contains("no examples"), r.stderr)

        // Rank larger than the smallest adapted layer (k/v: 64 → 32 outputs).
        r = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", dir.appendingPathComponent("o3").path, "--rank", "40"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("rank 40"), r.stderr)

        // A finished run is not overwritten by a new one without --resume.
        let out = dir.appendingPathComponent("o4")
        r = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", out.path, "--steps", "2", "--rank", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let before = try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors"))
        r = try CLI.run(["train", "--model", model.path, "--data", sample, "--output", out.path, "--steps", "2", "--rank", "4"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--resume"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors")), before)
    }
}
