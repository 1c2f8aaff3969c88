import Foundation
import XCTest

/// `langtune eval` as a user runs it.
final class EvalCLITests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lt-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) throws -> String {
        let p = dir.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    func testPredictionsAreScoredWithoutAModel() throws {
        let p = try write("p.jsonl", """
            {"id": "1", "prediction": "Ankara", "references": ["Ankara"], "language": "tr"}
            {"id": "2", "prediction": "ISPARTA şehri", "references": ["Isparta", "ısparta"], "language": "tr"}
            {"id": "3", "prediction": "北京市", "references": ["北京"], "language": "zh"}

            {"id": "4", "prediction": "", "references": ["something"], "language": "en"}
            """)
        let r = try CLI.run(["eval", "--predictions", p, "--json", "--output", dir.appendingPathComponent("out").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(j["examples"] as? Int, 4)
        XCTAssertEqual(j["exact_match"] as? Double, 25)
        // F1: 100, 2/3 (tokens ısparta şehri vs ısparta), CMRC 北京市 vs 北京: 2·(2/3·1)/(2/3+1) = 0.8, 0.
        XCTAssertEqual(try XCTUnwrap(j["f1"] as? Double), (100 + 200.0 / 3 + 80 + 0) / 4, accuracy: 1e-9)
        XCTAssertTrue(j["perplexity"] is NSNull)
        for key in ["chrf", "bleu", "rouge_l", "language_fidelity"] { XCTAssertNotNil(j[key] as? Double, key) }
        for f in ["results.json", "predictions.jsonl", "report.html"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/\(f)").path), f)
        }
        // Its own predictions.jsonl is valid input again and scores the same.
        let again = try CLI.run(["eval", "--predictions", dir.appendingPathComponent("out/predictions.jsonl").path, "--json"])
        XCTAssertEqual(again.status, 0, again.stderr)
        let j2 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(j2["f1"] as? Double, j["f1"] as? Double)
    }

    func testBadPredictionFilesNameFileAndLine() throws {
        let cases: [(String, String)] = [
            ("{\"id\": 1, \"prediction\": \"a\", \"references\": [\"a\"]}\n{not json}\n", "line 2: invalid JSON"),
            ("{\"id\": 1, \"references\": [\"a\"]}\n", "line 1: missing field \"prediction\""),
            ("{\"id\": 1, \"prediction\": \"a\", \"references\": []}\n", "line 1: no references"),
            ("\n\n", "has no lines"),
        ]
        for (i, (text, expected)) in cases.enumerated() {
            let p = try write("bad\(i).jsonl", text)
            let r = try CLI.run(["eval", "--predictions", p, "--json"])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(p), r.stderr)
            XCTAssertTrue(r.stderr.contains(expected), "\(expected) in \(r.stderr)")
            XCTAssertTrue(r.stdout.isEmpty)
        }
    }

    func testEvalOnTheDefaultModelWithCompare() throws {
        let model = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let data = TestPaths.repoRoot.appendingPathComponent("data/sample/zh_qa.json").path
        // A random adapter changes answers; base and adapted must both be reported.
        let adapter = dir.appendingPathComponent("adapter").path
        let a = try CLI.run(["adapter-init", "--model", model, "--output", adapter, "--rank", "4", "--seed", "3", "--random-b", "--b-amplitude", "0.02"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let out = dir.appendingPathComponent("eval").path
        let r = try CLI.run(["eval", "--model", model, "--adapter", adapter, "--compare", "--data", data, "--max-examples", "3",
                             "--max-new-tokens", "8", "--json", "--output", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let base = try XCTUnwrap(j["base"] as? [String: Any])
        for m in [j, base] {
            XCTAssertEqual(m["examples"] as? Int, 3)
            let ppl = try XCTUnwrap(m["perplexity"] as? Double)
            XCTAssertTrue(ppl > 1 && ppl < 1e4, "\(ppl)")
            for key in ["exact_match", "f1", "chrf", "bleu", "rouge_l", "language_fidelity"] { XCTAssertNotNil(m[key] as? Double, key) }
        }
        XCTAssertNotEqual(j["perplexity"] as? Double, base["perplexity"] as? Double)
        let lines = try String(contentsOfFile: out + "/predictions.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"))
        XCTAssertTrue(html.contains("base") && html.contains("adapted"))
    }

    func testCompareNeedsAnAdapter() throws {
        let r = try CLI.run(["eval", "--compare", "--data", "x.json"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--compare needs --adapter"), r.stderr)
    }
}
