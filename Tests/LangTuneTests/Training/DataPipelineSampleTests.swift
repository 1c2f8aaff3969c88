import Foundation
import XCTest
@testable import LangTune

/// The project's own sample data (data/sample): well-formed, correct offsets, short examples.
final class DataPipelineSampleTests: XCTestCase {
    let files = [("tr_qa.json", "tr", "Soru: "), ("zh_qa.json", "zh", "问题：")]

    func testEveryAnswerStartIsRight() throws {
        for (name, lang, _) in files {
            let path = TestPaths.repoRoot.appendingPathComponent("data/sample/\(name)").path
            let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            let articles = try XCTUnwrap(root["data"] as? [[String: Any]])
            XCTAssertEqual(articles.count, 12, name)
            var questions = 0
            var ids = Set<String>()
            for article in articles {
                for p in try XCTUnwrap(article["paragraphs"] as? [[String: Any]]) {
                    let context = try XCTUnwrap(p["context"] as? String)
                    let scalars = Array(context.unicodeScalars)
                    XCTAssertEqual(QAPrompt.detectLanguage(context), lang, context)
                    for qa in try XCTUnwrap(p["qas"] as? [[String: Any]]) {
                        questions += 1
                        ids.insert(try XCTUnwrap(qa["id"] as? String))
                        let answer = try XCTUnwrap((qa["answers"] as? [[String: Any]])?.first)
                        let text = try XCTUnwrap(answer["text"] as? String)
                        let start = try XCTUnwrap(answer["answer_start"] as? Int, "answer_start is an integer")
                        XCTAssertFalse(answer["answer_start"] is String)
                        let n = text.unicodeScalars.count
                        XCTAssertTrue(start >= 0 && start + n <= scalars.count, "\(name): \(text)")
                        guard start >= 0 && start + n <= scalars.count else { continue }
                        XCTAssertEqual(String(String.UnicodeScalarView(scalars[start..<(start + n)])), text, "\(name): \(qa["id"] ?? "")")
                        XCTAssertLessThanOrEqual(n, 30, "short answers")
                    }
                }
            }
            XCTAssertEqual(questions, 36, name)
            XCTAssertEqual(ids.count, 36, "\(name): ids are unique")
        }
    }

    func testSampleBuildsWithoutTrimming() throws {
        let smol = try SmolLM2Text.load()
        for (name, lang, mark) in files {
            let path = TestPaths.repoRoot.appendingPathComponent("data/sample/\(name)").path
            let raw = try DatasetReader.read(path)
            XCTAssertEqual(raw.count, 36)
            let builder = smol.builder(TrainingDataOptions(maxSeqLen: 512))
            let (examples, report) = try builder.build(raw)
            XCTAssertEqual(report.kept, 36)
            XCTAssertEqual(report.contextTrimmed, 0)
            XCTAssertLessThanOrEqual(report.maxTokens, 350, "\(name): keep sample examples short")
            for (e, r) in zip(examples, raw) {
                guard case .qa(let item) = r.body else { return XCTFail() }
                XCTAssertEqual(builder.language(of: item), lang)
                XCTAssertEqual(smol.labelledText(e), item.answers[0] + "<|im_end|>\n")
                XCTAssertTrue(smol.decode(smol.promptPart(e)).contains(mark + item.question))
            }
            print("\(name): \(report.summary)")
        }
    }
}
