import Foundation
import XCTest
@testable import LangTune

/// Fixture access for the tokenizer tests: the committed id fixtures, corpus rule v1
/// re-derived from the shared data, and the two real tokenizers.
enum TokenizerFixtures {
    struct Row {
        let src: String
        let i: Int
        let sha: String
        let addSpecialTokens: Bool
        let ids: [Int]
        /// sha16 of the reference's decode(ids) when that is not the input (e.g. a `▁` in SentencePiece text).
        var decodedSha: String? = nil
    }

    static func rows(_ name: String) throws -> [Row] {
        let url = TestPaths.fixture("tokenizer/\(name)")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            guard let src = o["src"] as? String, let i = o["i"] as? Int, let sha = o["sha"] as? String,
                  let special = o["add_special_tokens"] as? Bool, let ids = o["ids"] as? [Int] else {
                throw TokenizerTestGGUF.Failure(description: "bad fixture line in \(name)")
            }
            return Row(src: src, i: i, sha: sha, addSpecialTokens: special, ids: ids, decodedSha: o["decoded_sha"] as? String)
        }
    }

    static func hardCases() throws -> [String] {
        let data = try Data(contentsOf: TestPaths.fixture("tokenizer/hard_cases.json"))
        guard let list = try JSONSerialization.jsonObject(with: data) as? [String] else {
            throw TokenizerTestGGUF.Failure(description: "hard_cases.json is not a list of strings")
        }
        return list
    }

    static func sha16(_ s: String) -> String {
        String(TokenizerTestSHA256.hex(Array(s.utf8)).prefix(16))
    }

    /// Corpus rule v1 (Tests/Reference/common.py): per file, walk data → paragraphs; emit the
    /// context's first 200 scalars, then per qa the question and its first answer's text;
    /// stop at 1100 strings per file.
    static func corpusV1() throws -> [String] {
        let root = try TestPaths.require(TestPaths.sharedData, hint: "the shared data sets are absent")
        var lines: [String] = []
        for rel in ["tquad/dev-v0.1.json", "cmrc2018/cmrc2018_trial.json"] {
            let url = try TestPaths.require(root.appendingPathComponent(rel), hint: "the shared data sets are absent")
            let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
            var out: [String] = []
            func emit(_ s: String) { if out.count < 1100 { out.append(s) } }
            walk: for article in doc["data"] as? [[String: Any]] ?? [] {
                for para in article["paragraphs"] as? [[String: Any]] ?? [] {
                    let context = para["context"] as? String ?? ""
                    emit(String(String.UnicodeScalarView(context.unicodeScalars.prefix(200))))
                    for qa in para["qas"] as? [[String: Any]] ?? [] {
                        emit(qa["question"] as? String ?? "")
                        if let answers = qa["answers"] as? [[String: Any]], let first = answers.first {
                            emit(first["text"] as? String ?? "")
                        }
                    }
                    if out.count >= 1100 { break walk }
                }
            }
            guard out.count == 1100 else { throw TokenizerTestGGUF.Failure(description: "\(rel): only \(out.count) strings") }
            lines += out
        }
        return lines
    }

    /// SmolLM2's tokenizer from the GGUF; loaded once per test run unless `fresh` (empty word cache).
    static func smolLM2(fresh: Bool = false) throws -> Tokenizer {
        fresh ? try loadSmolLM2() : try sharedSmolLM2.get()
    }

    /// Llama 3's tokenizer.json; loaded once per test run unless `fresh` (empty word cache).
    static func llama3(fresh: Bool = false) throws -> Tokenizer {
        fresh ? try loadLlama3() : try sharedLlama3.get()
    }

    private static let sharedSmolLM2 = Result { try loadSmolLM2() }
    private static let sharedLlama3 = Result { try loadLlama3() }

    private static func loadSmolLM2() throws -> Tokenizer {
        let url = try TestPaths.require(TestPaths.smolLM2GGUF)
        let metadata = try TokenizerTestGGUF.readMetadata(url)
        return try Tokenizer(ggufMetadata: metadata, file: url.lastPathComponent)
    }

    private static func loadLlama3() throws -> Tokenizer {
        let url = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        return try Tokenizer(tokenizerJSON: Data(contentsOf: url), tokenizerConfigJSON: nil, file: url.path)
    }

    /// Compares every fixture row with `tokenizer`; returns the number of rows checked.
    /// Corpus rows are skipped (with a note) when the shared data is absent.
    /// `extra`: the strings rows with `"src": "extra"` index (a fixture's own cases).
    static func check(_ tokenizer: Tokenizer, fixture: String, extra: [String] = [], file: StaticString = #filePath,
                      line: UInt = #line) throws -> Int {
        let hard = try hardCases()
        var corpus: [String]? = nil
        do { corpus = try corpusV1() } catch let skip as XCTSkip { print("corpus rows not checked: \(skip)") }
        var checked = 0
        var mismatches = 0
        for row in try rows(fixture) {
            let text: String
            if row.src == "hard" {
                text = hard[row.i]
            } else if row.src == "extra" {
                text = extra[row.i]
            } else {
                guard let corpus else { continue }
                text = corpus[row.i]
            }
            XCTAssertEqual(sha16(text), row.sha, "\(fixture) \(row.src) \(row.i): the text differs from the fixture's", file: file, line: line)
            let ids = tokenizer.encode(text, addSpecialTokens: row.addSpecialTokens)
            if ids != row.ids {
                mismatches += 1
                if mismatches <= 5 {
                    XCTFail("\(fixture) \(row.src) \(row.i) special=\(row.addSpecialTokens) text=\(text.debugDescription)\n ours:     \(ids)\n expected: \(row.ids)", file: file, line: line)
                }
            }
            let back = tokenizer.decode(row.ids)
            let expectedBack = row.addSpecialTokens ? tokenizer.decode(tokenizer.specialPrefixIds) + text + tokenizer.decode(tokenizer.specialSuffixIds) : text
            if let decodedSha = row.decodedSha {
                XCTAssertEqual(sha16(back), decodedSha, "\(fixture) \(row.src) \(row.i): decode differs from the reference's", file: file, line: line)
            } else {
                // Bytes, not String ==, which would accept a canonically equivalent spelling.
                XCTAssertEqual(Array(back.utf8), Array(expectedBack.utf8), "\(fixture) \(row.src) \(row.i): decode(encode(x)) != x", file: file, line: line)
            }
            checked += 1
        }
        XCTAssertEqual(mismatches, 0, "\(fixture): \(mismatches) rows differ", file: file, line: line)
        if corpus != nil {
            XCTAssertEqual(checked, 2348 + extra.count + min(10, extra.count),
                           "\(fixture): every row (128 hard + 2200 corpus + the extra cases, + 30 with special tokens)", file: file, line: line)
        }
        print("\(fixture): \(checked) rows checked, \(mismatches) differ")
        return checked
    }
}
