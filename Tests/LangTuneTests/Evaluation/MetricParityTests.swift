import Foundation
import XCTest
@testable import LangTune

/// Every metric against its reference implementation (`Tests/Reference/eval_metrics.py`:
/// the official SQuAD v1.1 and CMRC 2018 scripts, sacrebleu 2.6, rouge-score 0.1.2, NLTK 3.10)
/// on the same predictions, to 1e-6.
final class MetricParityTests: XCTestCase {
    struct Case: Decodable {
        let id, language, prediction: String
        let references: [String]
        let exact_match, f1, rouge_l: Double
        let tokens: [[String]]
    }
    struct Corpus: Decodable {
        let language, name: String
        let ids: [String]
        let chrf, bleu: Double
    }
    struct TokCase: Decodable {
        let text: String
        let `13a`: String
        let zh: String
        let nltk: [String]
        enum CodingKeys: String, CodingKey { case text, zh, nltk, `13a` = "13a" }
    }
    struct Fixture: Decodable {
        let cases: [Case]
        let corpora: [Corpus]
        let tokenizers: [TokCase]
    }

    static let fixture: Fixture = {
        let data = try! Data(contentsOf: TestPaths.fixture("eval_metrics.json"))
        return try! JSONDecoder().decode(Fixture.self, from: data)
    }()

    func testTokenizersMatchTheirReferences() throws {
        var failures = 0
        for t in Self.fixture.tokenizers {
            let zh = BLEUTokenizer.tokens(t.text, language: "zh").joined(separator: " ")
            if !sameScalars(zh, t.zh) { failures += 1; if failures < 5 { XCTFail("zh tokenizer on \(t.text.debugDescription): \(zh.debugDescription) vs \(t.zh.debugDescription)") } }
            let t13 = BLEUTokenizer.tokens(t.text, language: "en").joined(separator: " ")
            if !sameScalars(t13, t.`13a`) { failures += 1; if failures < 5 { XCTFail("13a tokenizer on \(t.text.debugDescription): \(t13.debugDescription) vs \(t.`13a`.debugDescription)") } }
            let nl = NLTKWordTokenizer.tokenize(PyText.lower(t.text))
            if nl.count != t.nltk.count || !zip(nl, t.nltk).allSatisfy(sameScalars) {
                failures += 1
                if failures < 5 { XCTFail("nltk on \(t.text.debugDescription): \(nl) vs \(t.nltk)") }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testPerQuestionMetricsMatchReferenceScripts() {
        var failures = 0
        for c in Self.fixture.cases {
            let toks = AnswerText.tokens(c.prediction, language: c.language)
            if toks.count != c.tokens[0].count || !zip(toks, c.tokens[0]).allSatisfy(sameScalars) {
                failures += 1
                XCTFail("\(c.id) tokens of \(c.prediction.debugDescription): \(toks) vs \(c.tokens[0])")
            }
            let em = QAMetrics.exactMatch(c.prediction, c.references, language: c.language)
            let f1 = QAMetrics.f1(c.prediction, c.references, language: c.language)
            let rl = QAMetrics.rougeL(c.prediction, c.references, language: c.language)
            for (name, ours, ref) in [("EM", em, c.exact_match), ("F1", f1, c.f1), ("ROUGE-L", rl, c.rouge_l)] where abs(ours - ref) > 1e-6 {
                failures += 1
                XCTFail("\(c.id) \(name) \(ours) vs \(ref): \(c.prediction.debugDescription) vs \(c.references)")
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testCorpusChrFAndBLEUMatchSacreBLEU() {
        let byID = Dictionary(uniqueKeysWithValues: Self.fixture.cases.map { ($0.id, $0) })
        for corpus in Self.fixture.corpora {
            var chrf = CHRF(), bleu = BLEU()
            for id in corpus.ids {
                let c = byID[id]!
                chrf.add(c.prediction, references: c.references)
                bleu.add(c.prediction, references: c.references, language: corpus.language)
            }
            XCTAssertEqual(chrf.score, corpus.chrf, accuracy: 1e-6, "chrF \(corpus.language)/\(corpus.name)")
            XCTAssertEqual(bleu.score, corpus.bleu, accuracy: 1e-6, "BLEU \(corpus.language)/\(corpus.name)")
        }
    }

    /// The fixture is not degenerate: the metrics take many different values, so a metric
    /// that returned a constant would fail the tests above.
    func testFixtureSpreadsOverTheScale() {
        let f1s = Set(Self.fixture.cases.map { ($0.f1 * 1000).rounded() })
        XCTAssertGreaterThan(f1s.count, 30)
        XCTAssertGreaterThan(Self.fixture.cases.filter { $0.exact_match == 100 }.count, 20)
        XCTAssertGreaterThan(Self.fixture.cases.filter { $0.exact_match == 0 }.count, 100)
    }

    func testTurkishCaseFoldingAndChineseSegmentation() {
        XCTAssertEqual(QAMetrics.exactMatch("ISPARTA", ["ısparta"], language: "tr"), 100)
        XCTAssertEqual(QAMetrics.exactMatch("ISPARTA", ["ısparta"], language: "en"), 0)
        XCTAssertEqual(QAMetrics.exactMatch("İstanbul'da", ["istanbulda"], language: "tr"), 100)
        XCTAssertEqual(AnswerText.tokens("IBM公司成立于1911年。", language: "zh"), ["ibm", "公", "司", "成", "立", "于", "1911", "年"])
        XCTAssertEqual(QAMetrics.f1("北京", ["北京市"], language: "zh"), 80, accuracy: 1e-9)
    }

    /// Defined results at the edges: empty and very long predictions, mixed scripts.
    func testEdgeCasesHaveDefinedResults() {
        for lang in ["en", "tr", "zh"] {
            XCTAssertEqual(QAMetrics.exactMatch("", ["Ankara"], language: lang), 0)
            XCTAssertEqual(QAMetrics.f1("", ["Ankara"], language: lang), 0)
            XCTAssertEqual(QAMetrics.rougeL("", ["Ankara"], language: lang), 0)
        }
        // 20,000 characters against a short reference: scored in full, small but not zero.
        let long = String(repeating: "uzun bir cevap 北京 ", count: 1_250)
        for lang in ["tr", "zh"] {
            let f = QAMetrics.f1(long, ["北京"], language: lang), r = QAMetrics.rougeL(long, ["北京"], language: lang)
            XCTAssertGreaterThan(f, 0); XCTAssertLessThan(f, 1)
            XCTAssertGreaterThan(r, 0); XCTAssertLessThan(r, 1)
        }
        var chrf = CHRF(), bleu = BLEU()
        chrf.add(long, references: ["北京"]); bleu.add(long, references: ["北京"], language: "zh")
        XCTAssertTrue(chrf.score.isFinite && bleu.score.isFinite)
        // Mixed scripts: Latin and Han in one answer are compared under the question's language.
        XCTAssertEqual(QAMetrics.f1("IBM公司", ["ibm公司"], language: "zh"), 100)
        XCTAssertEqual(AnswerLanguage.classify("IBM公司的总部", expected: "zh"), .target)
        XCTAssertEqual(AnswerLanguage.classify("The IBM headquarters 在纽约", expected: "zh"), .english)
        XCTAssertEqual(AnswerLanguage.classify("IBM headquarters 在纽约", expected: "zh"), .neutral, "two Latin words, no English evidence")
    }
}
