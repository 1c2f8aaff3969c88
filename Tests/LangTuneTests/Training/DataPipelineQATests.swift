import Foundation
import XCTest
@testable import LangTune

/// SQuAD questions through `DatasetReader` and `TrainingDataBuilder` with SmolLM2's tokenizer and template.
final class DataPipelineQATests: XCTestCase {
    func testLabelsAreTheAnswerAndEndOfTurnAndPromptsMatchInference() throws {
        let smol = try SmolLM2Text.load()
        let dir = try TempDir()
        let path = try dir.squad("qa.json", [
            ("The Nile flows north through eleven countries and ends in a delta on the Mediterranean Sea.",
             [("Into which sea does the Nile flow?", "the Mediterranean Sea", nil)]),
            ("Ankara, 1923'ten beri Türkiye'nin başkentidir. Şehir İç Anadolu'dadır.",
             [("Türkiye'nin başkenti neresidir?", "Ankara", nil), ("Ankara hangi bölgededir?", " İç Anadolu", nil)]),
            ("长江是中国最长的河流，在上海注入东海。", [("长江在哪里注入东海？", "上海", nil)]),
        ])
        let raw = try DatasetReader.read(path)
        let builder = smol.builder()
        let (examples, report) = try builder.build(raw)
        XCTAssertEqual(examples.count, 4)
        XCTAssertEqual(report.total, 4)
        XCTAssertEqual(report.kept, 4)
        XCTAssertEqual(report.dropped, 0)
        XCTAssertEqual(report.contextTrimmed, 0)
        let answers = ["the Mediterranean Sea", "Ankara", "İç Anadolu", "上海"]
        let marks = ["Question: Into which", "Soru: Türkiye", "Soru: Ankara", "问题：长江"]
        var targets = 0
        for (i, e) in examples.enumerated() {
            guard case .qa(let item) = raw[i].body else { return XCTFail("not QA") }
            XCTAssertEqual(e.origin, "\(path):data[\(i < 1 ? 0 : i < 3 ? 1 : 2)].paragraphs[0].qas[\(i == 2 ? 1 : 0)]")
            XCTAssertEqual(e.ids.count, e.labels.count)
            XCTAssertEqual(smol.labelledText(e), answers[i] + "<|im_end|>\n")
            // The prompt is what inference feeds the model for this question.
            let prompt = smol.promptPart(e)
            XCTAssertEqual(prompt, try smol.promptIds(builder.promptMessages(for: item)))
            let promptText = smol.decode(prompt)
            XCTAssertTrue(promptText.contains(marks[i]), promptText)
            XCTAssertTrue(promptText.hasPrefix("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"), "the template's own default system message")
            XCTAssertTrue(promptText.hasSuffix("<|im_end|>\n<|im_start|>assistant\n"))
            // Labels: -100 over the prompt, then exactly the ids.
            XCTAssertTrue(e.labels[..<prompt.count].allSatisfy { $0 == -100 })
            XCTAssertEqual(Array(e.labels[prompt.count...]), Array(e.ids[prompt.count...]))
            XCTAssertEqual(e.ids.last, 198, "the newline after <|im_end|>")
            XCTAssertEqual(e.ids[e.ids.count - 2], 2, "<|im_end|>")
            targets += e.ids.count - prompt.count
        }
        XCTAssertEqual(report.answerTokens, targets)
        XCTAssertEqual(report.maxTokens, examples.map(\.ids.count).max())
        XCTAssertEqual(report.meanTokens, Double(examples.map(\.ids.count).reduce(0, +)) / 4, accuracy: 1e-9)
    }

    func testSystemPromptLanguageAndCustomTemplateOptions() throws {
        let smol = try SmolLM2Text.load()
        let item = QAItem(id: "1", context: "Paris is the capital of France.", question: "What is the capital of France?",
                          answers: ["Paris"], answerStart: 0)
        let raw = [RawExample(body: .qa(item), origin: "mem:item 0")]
        let options = TrainingDataOptions(promptTemplate: "Q: {question}\nC: {context} {unknown}", language: "tr",
                                          systemPrompt: "Be brief.")
        let (ex, _) = try smol.builder(options).build(raw)
        let prompt = smol.decode(smol.promptPart(ex[0]))
        XCTAssertEqual(prompt, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ: What is the capital of France?\n"
                       + "C: Paris is the capital of France. {unknown}<|im_end|>\n<|im_start|>assistant\n")
        // A language option picks that language's built-in prompt whatever the text.
        let (tr, _) = try smol.builder(TrainingDataOptions(language: "tr")).build(raw)
        XCTAssertTrue(smol.decode(smol.promptPart(tr[0])).contains("Metin: Paris is the capital of France.\n\nSoru: What is"))
        let unknown = datasetErrorMessage { _ = try smol.builder(TrainingDataOptions(language: "de")).build(raw) }
        XCTAssertEqual(unknown, "mem: no built-in prompt for language \"de\" (built in: tr, zh, en); give a prompt template")
        let noPlaceholder = datasetErrorMessage { _ = try smol.builder(TrainingDataOptions(promptTemplate: "{question}")).build(raw) }
        XCTAssertEqual(noPlaceholder, "mem: the prompt template must contain {context} and {question}")
    }

    func testLanguageDetectionAndPlaceholderFilling() {
        XCTAssertEqual(QAPrompt.detectLanguage("Türkiye'nin başkenti neresidir?"), "tr")
        XCTAssertEqual(QAPrompt.detectLanguage("Bu kitap ne zaman yazildi ve kim yazdi?"), "tr", "ASCII-only Turkish, by its words")
        XCTAssertEqual(QAPrompt.detectLanguage("中国的首都是哪里？北京。"), "zh")
        XCTAssertEqual(QAPrompt.detectLanguage("What is the capital of France? Paris, on the Seine."), "en")
        XCTAssertEqual(QAPrompt.detectLanguage("The word 水 means water in Chinese and Japanese."), "en", "one Han character in English text")
        XCTAssertEqual(QAPrompt.detectLanguage("Über den Straßenbahnen, in München"), "en", "ü is not Turkish-only")
        XCTAssertEqual(QAPrompt.fill("{context}|{question}|{x}{", context: "a {question} b", question: "q{context}"),
                       "a {question} b|q{context}|{x}{")
    }

    /// A passage too long for the limit: the largest sentence window around the answer
    /// (at `answer_start`, not at an earlier copy of the answer) that fits.
    func testLongContextIsTrimmedAroundTheAnswerAtSentenceBoundaries() throws {
        let smol = try SmolLM2Text.load()
        var sentences = (0..<60).map { "Sentence number \($0) describes the river Alpha and its many long tributaries." }
        sentences[5] = "An old song mentions BLUEHERON once."
        sentences[40] = "The secret code of the valley is BLUEHERON."
        let context = sentences.joined(separator: " ")
        let scalars = Array(context.unicodeScalars)
        let second = Array(context.unicodeScalars).indices.filter {
            $0 + 9 <= scalars.count && String(String.UnicodeScalarView(scalars[$0..<($0 + 9)])) == "BLUEHERON"
        }
        XCTAssertEqual(second.count, 2)
        let dir = try TempDir()
        let path = try dir.squad("long.json", [(context, [("What is the secret code of the valley?", "BLUEHERON", second[1])])])
        let raw = try DatasetReader.read(path)
        for maxLen in [96, 200, 400] {
            let (ex, report) = try smol.builder(TrainingDataOptions(maxSeqLen: maxLen)).build(raw)
            XCTAssertEqual(report.contextTrimmed, 1)
            XCTAssertEqual(report.kept, 1)
            let e = ex[0]
            XCTAssertLessThanOrEqual(e.ids.count, maxLen)
            XCTAssertGreaterThan(e.ids.count, maxLen - 20, "the largest window that fits: one more sentence is ~16 tokens")
            XCTAssertEqual(smol.labelledText(e), "BLUEHERON<|im_end|>\n")
            let prompt = smol.decode(smol.promptPart(e))
            let passage = try XCTUnwrap(prompt.range(of: "Passage: ").map { prompt[$0.upperBound...] }
                .flatMap { p in p.range(of: "\n\nQuestion:").map { String(p[..<$0.lowerBound]) } })
            XCTAssertTrue(passage.contains("The secret code of the valley is BLUEHERON."), passage)
            XCTAssertFalse(passage.contains("An old song"), "the window is around answer_start, not the first copy")
            XCTAssertTrue(context.contains(passage), "a contiguous piece of the passage")
            XCTAssertTrue(passage.hasSuffix("."), "cut at a sentence end: \(passage.suffix(30))")
            XCTAssertTrue(passage.hasPrefix("Sentence number") || passage.hasPrefix("The secret"), "cut at a sentence start: \(passage.prefix(30))")
            print("trimmed to \(maxLen): \(e.ids.count) tokens, \(passage.count) of \(context.count) characters")
        }
    }

    /// One sentence longer than the limit: the window shrinks inside it at word boundaries.
    func testOneHugeSentenceIsCutAtWordsAroundTheAnswer() throws {
        let smol = try SmolLM2Text.load()
        let words = (0..<400).map { "word\($0)" }
        var w = words
        w[300] = "ZEPHYR"
        let context = w.joined(separator: " ") + "."
        let item = QAItem(id: "x", context: context, question: "Which word is odd?", answers: ["ZEPHYR"], answerStart: nil)
        let (ex, report) = try smol.builder(TrainingDataOptions(maxSeqLen: 128)).build([RawExample(body: .qa(item), origin: "mem:item 0")])
        XCTAssertEqual(report.contextTrimmed, 1)
        XCTAssertLessThanOrEqual(ex[0].ids.count, 128)
        XCTAssertGreaterThan(ex[0].ids.count, 108)
        let prompt = smol.decode(smol.promptPart(ex[0]))
        let passage = String(prompt[prompt.range(of: "Passage: ")!.upperBound..<prompt.range(of: "\n\nQuestion:")!.lowerBound])
        XCTAssertTrue(passage.contains(" word299 ZEPHYR word301 "))
        XCTAssertTrue(passage.hasPrefix("word"), passage)
        let parts = passage.split(separator: " ")
        XCTAssertTrue(parts.allSatisfy { $0 == "ZEPHYR" || words.contains(String($0)) || $0 == "word399." }, "whole words only")
    }

    func testAnswerLocation() {
        let s = Array("ab X cd X ef".unicodeScalars)
        XCTAssertEqual(TrainingDataBuilder.locate("X", in: s, near: 8, original: "X"), 8..<9, "answer_start matches")
        XCTAssertEqual(TrainingDataBuilder.locate("X", in: s, near: 9, original: "X"), 8..<9, "off by one: the nearest copy")
        XCTAssertEqual(TrainingDataBuilder.locate("X", in: s, near: 4, original: "X"), 3..<4)
        XCTAssertEqual(TrainingDataBuilder.locate("X", in: s, near: nil, original: "X"), 3..<4, "no start: the first copy")
        XCTAssertEqual(TrainingDataBuilder.locate("X", in: s, near: 7, original: " X"), 8..<9, "start of an answer with a leading space")
        XCTAssertNil(TrainingDataBuilder.locate("Y", in: s, near: 3, original: "Y"))
        XCTAssertNil(TrainingDataBuilder.locate("ab X cd X ef!", in: s, near: 0, original: "ab X cd X ef!"))
    }

    func testSentenceBoundaries() {
        let t = Array("II. Mehmed 1453'te geldi. 16. yüzyılda Sinan yaşadı! Sonra? bitti. 长江很长。黄河也长”。End".unicodeScalars)
        let (starts, ends) = ContextWindows.sentenceBounds(t)
        func text(_ a: Int, _ b: Int) -> String { String(String.UnicodeScalarView(t[a..<b])) }
        let sentences = zip(starts, ends).map { text($0, $1) }
        XCTAssertEqual(sentences, ["II. Mehmed 1453'te geldi.", "16. yüzyılda Sinan yaşadı!", "Sonra? bitti.", "长江很长。", "黄河也长”。", "End"])
    }

    func testAnswerThatCannotFitIsDroppedWithItsOrigin() throws {
        let smol = try SmolLM2Text.load()
        let dir = try TempDir()
        let longAnswer = (0..<200).map { "w\($0)" }.joined(separator: " ")
        let path = try dir.squad("mixed.json", [
            ("Short passage about Rome, the capital of Italy.", [("What is the capital of Italy?", "Rome", nil)]),
            ("Prefix. " + longAnswer + ". Suffix.", [("Which words?", longAnswer, nil)]),
        ])
        let (ex, report) = try smol.builder(TrainingDataOptions(maxSeqLen: 128)).build(try DatasetReader.read(path))
        XCTAssertEqual(ex.count, 1)
        XCTAssertEqual(report.kept, 1)
        XCTAssertEqual(report.dropped, 1)
        XCTAssertEqual(report.droppedTooLong, 1)
        XCTAssertEqual(report.droppedOrigins, ["\(path):data[1].paragraphs[0].qas[0]"])
        XCTAssertTrue(report.summary.contains("dropped 1 (1 too long for 128 tokens)"), report.summary)
        XCTAssertTrue(report.summary.contains("first dropped: \(path):data[1].paragraphs[0].qas[0]"), report.summary)

        let only = try dir.squad("bad.json", [("Prefix. " + longAnswer + ". Suffix.", [("Which words?", longAnswer, nil)])])
        let message = datasetErrorMessage { _ = try smol.builder(TrainingDataOptions(maxSeqLen: 128)).build(try DatasetReader.read(only)) }
        XCTAssertEqual(message, "\(only): no usable example: all 1 were dropped (1 longer than 128 tokens even with the context "
                       + "trimmed to the answer); first: \(only):data[0].paragraphs[0].qas[0]")
    }

    func testTooLongWithTheAnswerMissingFromTheContext() throws {
        let smol = try SmolLM2Text.load()
        let item = QAItem(id: "1", context: String(repeating: "Lorem ipsum dolor sit amet. ", count: 100), question: "Where?",
                          answers: ["Nowhere"], answerStart: 3)
        let ok = QAItem(id: "2", context: "Short.", question: "Q?", answers: ["Short"], answerStart: 0)
        let (_, report) = try smol.builder(TrainingDataOptions(maxSeqLen: 256))
            .build([RawExample(body: .qa(item), origin: "f.json:a"), RawExample(body: .qa(ok), origin: "f.json:b")])
        XCTAssertEqual(report.droppedAnswerNotFound, 1)
        XCTAssertEqual(report.droppedOrigins, ["f.json:a"])
        XCTAssertEqual(report.kept, 1)
    }

    // MARK: Real data sets

    func testTQuADFirst200Questions() throws {
        let url = try TestPaths.require(TestPaths.sharedData.appendingPathComponent("tquad/train-v0.1.json"), hint: "TQuAD is in ../shared/data")
        let r = try realDataRun(url.path, expectLanguage: "tr")
        // Recorded with SmolLM2's tokenizer: 145 of the first 200 are over 512 tokens whole (mean 743.9); all fit trimmed.
        XCTAssertEqual([r.kept, r.contextTrimmed, r.dropped], [200, 145, 0])
    }

    func testCMRC2018TrialFirst200Questions() throws {
        let url = try TestPaths.require(TestPaths.sharedData.appendingPathComponent("cmrc2018/cmrc2018_trial.json"), hint: "CMRC 2018 is in ../shared/data")
        let r = try realDataRun(url.path, expectLanguage: "zh")
        // Chinese costs SmolLM2 more than a token per character: all 200 are over 512 tokens whole (mean 1044);
        // 6 have answers of several sentences that do not fit even alone.
        XCTAssertEqual([r.kept, r.contextTrimmed, r.dropped], [194, 194, 6])
    }

    /// Every kept example fits, carries its whole answer as labels, and shows the answer in its (possibly trimmed) passage.
    func realDataRun(_ path: String, expectLanguage: String) throws -> DataReport {
        let smol = try SmolLM2Text.load()
        let raw = Array(try DatasetReader.read(path).prefix(200))
        let builder = smol.builder(TrainingDataOptions(maxSeqLen: 512))
        let start = Date()
        let (examples, report) = try builder.build(raw)
        let seconds = Date().timeIntervalSince(start)
        var byOrigin: [String: RawExample] = [:]
        for r in raw { byOrigin[r.origin] = r }
        var untrimmed = 0
        for e in examples {
            XCTAssertLessThanOrEqual(e.ids.count, 512)
            guard case .qa(let item)? = byOrigin[e.origin]?.body else { return report }
            XCTAssertEqual(builder.language(of: item), expectLanguage, e.origin)
            let answer = item.answers[0].trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(smol.labelledText(e), answer + "<|im_end|>\n", e.origin)
            let prompt = smol.decode(smol.promptPart(e))
            XCTAssertTrue(prompt.contains(answer), "\(e.origin): the answer is in the passage")
            if prompt.contains(item.context) { untrimmed += 1 }
        }
        XCTAssertEqual(untrimmed, report.kept - report.contextTrimmed, "trimmed examples lack part of their context")
        let full = try raw.map { r -> Int in
            guard case .qa(let item) = r.body else { return 0 }
            var m = try builder.promptMessages(for: item)
            m.append(ChatMessage(role: "assistant", content: item.answers[0]))
            return smol.tokenizer.encode(try smol.template.render(messages: m, addGenerationPrompt: false, bosToken: "", eosToken: ""),
                                         addSpecialTokens: false).count
        }
        let over = full.filter { $0 > 512 }.count
        print("""
            \((path as NSString).lastPathComponent) first \(raw.count): untrimmed mean \(String(format: "%.1f", Double(full.reduce(0, +)) / Double(full.count))) \
            tokens, \(over) over 512; after: \(report.summary.replacingOccurrences(of: "\n", with: " | ")); \(String(format: "%.1f", seconds)) s
            """)
        XCTAssertEqual(report.contextTrimmed + report.dropped, over, "exactly the over-long examples are trimmed or dropped")
        // A dropped question does not fit even with its context cut down to the answer itself.
        XCTAssertLessThanOrEqual(report.dropped, DataReport.originLimit)
        for origin in report.droppedOrigins {
            guard case .qa(let item)? = byOrigin[origin]?.body else { XCTFail(origin); continue }
            var m = try builder.promptMessages(for: item, context: item.answers[0])
            m.append(ChatMessage(role: "assistant", content: item.answers[0]))
            let minimal = smol.tokenizer.encode(try smol.template.render(messages: m, addGenerationPrompt: false, bosToken: "", eosToken: ""),
                                                addSpecialTokens: false).count
            XCTAssertGreaterThan(minimal, 512, origin)
        }
        return report
    }
}
