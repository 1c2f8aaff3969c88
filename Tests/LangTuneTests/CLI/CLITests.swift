import Foundation
import XCTest

/// The `langtune` command as a user runs it: JSON contracts and error messages.
final class CLITests: XCTestCase {
    /// The executable built next to the test bundle.
    func binary() throws -> URL {
        var dir = Bundle(for: CLITests.self).bundleURL
        for _ in 0..<3 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("langtune")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("langtune executable not built next to the tests (swift build --build-tests builds it)")
    }

    struct Run { var status: Int32; var stdout: String; var stderr: String }

    func run(_ args: [String]) throws -> Run {
        let p = Process()
        p.executableURL = try binary()
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func json(_ s: String) throws -> [String: Any] {
        let line = try XCTUnwrap(s.split(separator: "\n").last)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func testTokenizeScoreGenerateInspectJSON() throws {
        let model = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let tok = try run(["tokenize", "--model", model, "--json", "Merhaba dünya! 你好"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        let ids = try XCTUnwrap(try json(tok.stdout)["ids"] as? [Int])
        XCTAssertFalse(ids.isEmpty)

        let score = try run(["score", "--model", model, "--chat", "--top", "5", "--json", "Hello"])
        XCTAssertEqual(score.status, 0, score.stderr)
        let s = try json(score.stdout)
        XCTAssertEqual((s["last_top"] as? [[Double]])?.count, 5)
        XCTAssertNotNil(s["mean_logprob"] as? Double)
        XCTAssertEqual((s["ids"] as? [Int])?.first, 1, "ChatML starts with <|im_start|> (id 1)")

        let gen = try run(["generate", "--model", model, "--chat", "--prompt", "Hi", "--max-tokens", "4", "--json"])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let g = try json(gen.stdout)
        let scoreHi = try json(try run(["score", "--model", model, "--chat", "--json", "Hi"]).stdout)
        XCTAssertEqual(g["prompt_ids"] as? [Int], scoreHi["ids"] as? [Int])
        XCTAssertLessThanOrEqual((g["ids"] as? [Int])?.count ?? 99, 4)
        XCTAssertNotNil(g["text"] as? String)

        let inspect = try run(["inspect", model, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let i = try json(inspect.stdout)
        XCTAssertEqual(i["layers"] as? Int, 30)
        XCTAssertEqual(i["parameters"] as? Int, 134_515_008)
        XCTAssertEqual(i["chat_template"] as? String, "chatml")
        XCTAssertEqual(i["kv_heads"] as? Int, 3)
    }

    func testTokenizerJSONOption() throws {
        let tj = try TestPaths.require(TestPaths.llama3TokenizerJSON).path
        let r = try run(["tokenize", "--tokenizer", tj, "--json", "Hello world"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // This tokenizer.json has only a ByteLevel post-processor: HF adds no BOS either.
        XCTAssertEqual(try json(r.stdout)["ids"] as? [Int], [9906, 1917])
    }

    func testBadModelFileIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-cli-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("broken.gguf")
        try Data("GGUF\u{3}\0\0\0".utf8).write(to: bad)
        let r = try run(["generate", "--model", bad.path, "--prompt", "x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(bad.path), r.stderr)
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
        let missing = try run(["inspect", dir.appendingPathComponent("nope.gguf").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("nope.gguf"), missing.stderr)
    }
}
