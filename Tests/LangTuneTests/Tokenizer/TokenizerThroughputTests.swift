import Foundation
import XCTest
@testable import LangTune

/// Purpose: measure single-threaded encode throughput on the corpus lines (rule v1), cold
/// (fresh tokenizer, empty word cache) and warm. Numbers mean something only in a release build:
///   swift build -c release --build-tests -Xswiftc -enable-testing
///   swift test -c release -Xswiftc -enable-testing --skip-build --filter TokenizerThroughputTests
/// (LANGTUNE_BENCH_PASSES sets the number of warm passes: 10 by default, 1 in debug builds.)
final class TokenizerThroughputTests: XCTestCase {
    private func measure(_ name: String, _ make: () throws -> Tokenizer, fixture: String) throws {
        let lines = try TokenizerFixtures.corpusV1()
        let expected = try TokenizerFixtures.rows(fixture).filter { $0.src == "corpus" && !$0.addSpecialTokens }
        let expectedCount = expected.reduce(0) { $0 + $1.ids.count }
        let bytes = lines.reduce(0) { $0 + $1.utf8.count }
        let loadStart = Date()
        let tokenizer = try make()
        let loadSeconds = Date().timeIntervalSince(loadStart)

        var start = Date()
        var count = 0
        for line in lines { count += tokenizer.encode(line).count }
        let cold = Date().timeIntervalSince(start)
        XCTAssertEqual(count, expectedCount)

        #if DEBUG
        let defaultPasses = 1
        #else
        let defaultPasses = 10
        #endif
        let passes = max(1, Int(ProcessInfo.processInfo.environment["LANGTUNE_BENCH_PASSES"] ?? "") ?? defaultPasses)
        start = Date()
        count = 0
        for _ in 0..<passes { for line in lines { count += tokenizer.encode(line).count } }
        let warm = Date().timeIntervalSince(start) / Double(passes)
        XCTAssertEqual(count, expectedCount * passes)

        let mb = Double(bytes) / 1_000_000
        print(String(format: "%@: load %.3f s; %d lines, %.3f MB, %d ids; encode cold %.1f MB/s, warm %.1f MB/s",
                     name, loadSeconds, lines.count, mb, expectedCount, mb / cold, mb / warm))
        #if !DEBUG
        XCTAssertGreaterThan(mb / warm, 2.0, "\(name): encode throughput below 2 MB/s")
        #endif
    }

    func testSmolLM2EncodeThroughput() throws {
        try measure("SmolLM2 (GGUF)", { try TokenizerFixtures.smolLM2(fresh: true) }, fixture: "smollm2_ids.jsonl")
    }

    func testLlama3EncodeThroughput() throws {
        try measure("Llama 3 (tokenizer.json)", { try TokenizerFixtures.llama3(fresh: true) }, fixture: "llama3_ids.jsonl")
    }
}
