import Foundation
import XCTest
@testable import LangTune

/// Conversations, Alpaca records and plain text through the reader and the builder.
final class DataPipelineChatTests: XCTestCase {
    /// Contiguous labelled runs of an example, as (start, ids).
    func labelRuns(_ e: TokenizedExample) -> [(Int, [Int32])] {
        var runs: [(Int, [Int32])] = []
        for i in e.ids.indices where e.labels[i] != -100 {
            XCTAssertEqual(e.labels[i], e.ids[i])
            if let last = runs.last, last.0 + last.1.count == i { runs[runs.count - 1].1.append(e.ids[i]) } else { runs.append((i, [e.ids[i]])) }
        }
        return runs
    }

    func testMultiTurnLabelsCoverEveryAssistantTurn() throws {
        let smol = try SmolLM2Text.load()
        let dir = try TempDir()
        let convo: [[String: String]] = [
            ["role": "user", "content": "Merhaba! Nasılsın?"], ["role": "assistant", "content": "İyiyim, teşekkürler."],
            ["role": "user", "content": "2+2 kaç eder?"], ["role": "assistant", "content": "4 eder."],
        ]
        let line = String(decoding: try JSONSerialization.data(withJSONObject: ["messages": convo]), as: UTF8.self)
        let path = try dir.write("chat.jsonl", "\n" + line + "\n")
        let raw = try DatasetReader.read(path)
        guard case .chat(let messages) = raw[0].body else { return XCTFail("not chat") }

        let (all, report) = try smol.builder().build(raw)
        XCTAssertEqual(all[0].origin, "\(path):line 2")
        let runs = labelRuns(all[0])
        XCTAssertEqual(runs.map { smol.decode($0.1) }, ["İyiyim, teşekkürler.<|im_end|>\n", "4 eder.<|im_end|>\n"])
        // Before each answer: exactly the ids inference gives for the conversation so far.
        XCTAssertEqual(Array(all[0].ids[..<runs[0].0]), try smol.promptIds(Array(messages[..<1])))
        XCTAssertEqual(Array(all[0].ids[..<runs[1].0]), try smol.promptIds(Array(messages[..<3])))
        XCTAssertEqual(runs[1].0 + runs[1].1.count, all[0].ids.count, "nothing after the last answer")
        XCTAssertEqual(report.answerTokens, runs[0].1.count + runs[1].1.count)

        let (last, _) = try smol.builder(TrainingDataOptions(labelAllAssistantTurns: false)).build(raw)
        XCTAssertEqual(labelRuns(last[0]).map { smol.decode($0.1) }, ["4 eder.<|im_end|>\n"])
        XCTAssertEqual(last[0].ids, all[0].ids, "same ids, fewer labels")

        let (sys, _) = try smol.builder(TrainingDataOptions(systemPrompt: "Kısa yanıt ver.")).build(raw)
        XCTAssertTrue(smol.decode(sys[0].ids).hasPrefix("<|im_start|>system\nKısa yanıt ver.<|im_end|>\n<|im_start|>user\nMerhaba"))
    }

    func testOpeningAssistantTurnIsContext() throws {
        let smol = try SmolLM2Text.load()
        let messages = [ChatMessage(role: "assistant", content: "Hello! Ask me anything."), ChatMessage(role: "user", content: "2+3?"),
                        ChatMessage(role: "assistant", content: "5")]
        let (ex, _) = try smol.builder().build([RawExample(body: .chat(messages), origin: "o.jsonl:line 1")])
        XCTAssertEqual(labelRuns(ex[0]).map { smol.decode($0.1) }, ["5<|im_end|>\n"])
        XCTAssertEqual(smol.promptPart(ex[0]), try smol.promptIds(Array(messages[..<2])))
        let only = [ChatMessage(role: "assistant", content: "Hello!")]
        XCTAssertEqual(datasetErrorMessage { _ = try smol.builder().build([RawExample(body: .chat(only), origin: "o.jsonl:line 2")]) },
                       "o.jsonl: no usable example: all 1 were dropped (1 with no answer tokens); first: o.jsonl:line 2")
    }

    func testAlpacaRecords() throws {
        let smol = try SmolLM2Text.load()
        let dir = try TempDir()
        let path = try dir.write("alpaca.json", """
            [{"instruction": "Translate to Turkish.", "input": "Good morning", "output": "Günaydın"},
             {"instruction": "Name a prime number.", "output": "7"}]
            """)
        let (ex, report) = try smol.builder().build(try DatasetReader.read(path))
        XCTAssertEqual(report.kept, 2)
        XCTAssertEqual(ex.map(\.origin), ["\(path):item 0", "\(path):item 1"])
        XCTAssertEqual(smol.labelledText(ex[0]), "Günaydın<|im_end|>\n")
        XCTAssertEqual(smol.labelledText(ex[1]), "7<|im_end|>\n")
        XCTAssertEqual(smol.promptPart(ex[0]), try smol.promptIds([ChatMessage(role: "user", content: "Translate to Turkish.\n\nGood morning")]))
        XCTAssertEqual(smol.promptPart(ex[1]), try smol.promptIds([ChatMessage(role: "user", content: "Name a prime number.")]))
    }

    func testConversationTooLongIsDroppedNotCut() throws {
        let smol = try SmolLM2Text.load()
        let long = [ChatMessage(role: "user", content: "Tell me a story."),
                    ChatMessage(role: "assistant", content: String(repeating: "Once upon a time there was a river. ", count: 30))]
        let short = [ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello!")]
        let (ex, report) = try smol.builder(TrainingDataOptions(maxSeqLen: 100))
            .build([RawExample(body: .chat(long), origin: "c.jsonl:line 1"), RawExample(body: .chat(short), origin: "c.jsonl:line 2")])
        XCTAssertEqual(ex.map(\.origin), ["c.jsonl:line 2"])
        XCTAssertEqual(report.droppedTooLong, 1)
        XCTAssertEqual(report.droppedOrigins, ["c.jsonl:line 1"])
    }

    func testTemplateWithoutThePrefixPropertyIsRejectedByName() throws {
        let smol = try SmolLM2Text.load()
        // Renders the number of messages first, so earlier renderings are not prefixes of later ones.
        let counting = try ChatTemplate("""
            {{ messages|length }}{% for m in messages %}<|im_start|>{{ m.role }}
            {{ m.content }}<|im_end|>
            {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
            {% endif %}
            """)
        let raw = [RawExample(body: .chat([ChatMessage(role: "user", content: "a"), ChatMessage(role: "assistant", content: "b")]),
                              origin: "x.jsonl:line 7")]
        let b = TrainingDataBuilder(tokenizer: smol.tokenizer, template: counting, options: TrainingDataOptions())
        let message = datasetErrorMessage { _ = try b.build(raw) }
        XCTAssertTrue(message.hasPrefix("x.jsonl:line 7: cannot label assistant turn 2: with the chatml template, the rendering"), message)
        XCTAssertTrue(message.hasSuffix("(use a template that renders earlier turns unchanged)"), message)
        let twoTurns = [RawExample(body: .chat([ChatMessage(role: "user", content: "a"), ChatMessage(role: "assistant", content: "b"),
                                                ChatMessage(role: "user", content: "c"), ChatMessage(role: "assistant", content: "d")]),
                                   origin: "x.jsonl:line 8")]
        XCTAssertTrue(datasetErrorMessage { _ = try b.build(twoTurns) }.hasSuffix(", or label only the last assistant turn)"))

        let raising = try ChatTemplate("{{ raise_exception('roles must alternate') }}")
        let b2 = TrainingDataBuilder(tokenizer: smol.tokenizer, template: raising, options: TrainingDataOptions())
        XCTAssertEqual(datasetErrorMessage { _ = try b2.build(raw) },
                       "x.jsonl:line 7: the chat template rejected the conversation: template raised: roles must alternate")

        let b3 = TrainingDataBuilder(tokenizer: smol.tokenizer, template: nil, options: TrainingDataOptions())
        XCTAssertEqual(datasetErrorMessage { _ = try b3.build(raw) },
                       "x.jsonl:line 7: the model has no chat template, which QA and chat examples need (train on plain text instead)")
    }

    /// Llama 3's template and tokenizer: the end-of-turn token is `<|eot_id|>`, and the template adds BOS itself.
    func testLlama3TemplateLabels() throws {
        let url = try TestPaths.require(TestPaths.llama3TokenizerJSON)
        // As a model folder's tokenizer_config.json names them.
        let config = Data(#"{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}"#.utf8)
        let tokenizer = try Tokenizer(tokenizerJSON: Data(contentsOf: url), tokenizerConfigJSON: config, file: url.path)
        XCTAssertEqual(tokenizer.bosToken, "<|begin_of_text|>")
        struct Fixture: Decodable { let template: String }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: TestPaths.fixture("chat/llama3.json")))
        let template = try ChatTemplate(fixture.template)
        XCTAssertEqual(template.family, .llama3)
        let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Capital of Türkiye?"),
                        ChatMessage(role: "assistant", content: "Ankara."), ChatMessage(role: "user", content: "And of China?"),
                        ChatMessage(role: "assistant", content: " Beijing. ")]
        let b = TrainingDataBuilder(tokenizer: tokenizer, template: template, options: TrainingDataOptions())
        let (ex, _) = try b.build([RawExample(body: .chat(messages), origin: "l3.jsonl:line 1")])
        let runs = labelRuns(ex[0])
        XCTAssertEqual(runs.map { tokenizer.decode($0.1.map(Int.init)) }, ["Ankara.<|eot_id|>", "Beijing.<|eot_id|>"], "the template trims content")
        XCTAssertEqual(ex[0].ids.first, 128000, "<|begin_of_text|> from the template's bos_token")
        XCTAssertEqual(ex[0].ids.filter { $0 == 128000 }.count, 1, "no second BOS")
        let prompt = try template.render(messages: Array(messages[..<4]), addGenerationPrompt: true,
                                         bosToken: tokenizer.bosToken ?? "", eosToken: tokenizer.eosToken ?? "")
        XCTAssertEqual(Array(ex[0].ids[..<runs[1].0]), tokenizer.encode(prompt).map { Int32($0) })
    }

    // MARK: Plain text

    func testTextWindowRule() {
        func w(_ n: Int) -> [Range<Int>] { TrainingDataBuilder.textWindows(count: n, maxSeqLen: 512, minTail: 16) }
        XCTAssertEqual(w(1100), [0..<512, 512..<1024, 1024..<1100])
        XCTAssertEqual(w(1040), [0..<512, 512..<1024, 1024..<1040], "a 16-token tail is kept")
        XCTAssertEqual(w(1039), [0..<512, 512..<1024], "a 15-token tail cannot join a full window")
        XCTAssertEqual(w(512), [0..<512])
        XCTAssertEqual(w(100), [0..<100])
        XCTAssertEqual(w(5), [0..<5], "a short document is kept whole")
        XCTAssertEqual(w(0), [])
        XCTAssertEqual(TrainingDataBuilder.textWindows(count: 25, maxSeqLen: 20, minTail: 16), [0..<20])
    }

    func testPlainTextWindowsAreFullyLabelled() throws {
        let smol = try SmolLM2Text.load()
        let dir = try TempDir()
        let doc1 = (0..<80).map { "Line \($0) of a long document about rivers, mountains and lakes." }.joined(separator: "\n")
        let path = try dir.write("corpus.txt", doc1 + "\n\n\nA short second document.\n\nx\n")
        let raw = try DatasetReader.read(path)
        XCTAssertEqual(raw.count, 3)
        let (ex, report) = try smol.builder(TrainingDataOptions(maxSeqLen: 256)).build(raw)
        let ids1 = smol.tokenizer.encode(doc1, addSpecialTokens: true).map { Int32($0) }
        let expected = TrainingDataBuilder.textWindows(count: ids1.count, maxSeqLen: 256, minTail: 16)
        XCTAssertGreaterThan(expected.count, 2)
        let first = ex.filter { $0.origin == "\(path):line 1" }
        XCTAssertEqual(first.map(\.ids), expected.map { Array(ids1[$0]) })
        for e in ex { XCTAssertEqual(e.ids, e.labels); XCTAssertLessThanOrEqual(e.ids.count, 256) }
        XCTAssertEqual(smol.decode(ex[expected.count].ids), "A short second document.")
        // "x" is one token: nothing to predict after the shift.
        XCTAssertEqual(report.droppedNoAnswerTokens, 1)
        XCTAssertEqual(report.droppedOrigins, ["\(path):line 85"])
        XCTAssertEqual(report.kept, 2)
        XCTAssertEqual(report.sequences, expected.count + 1)
        XCTAssertEqual(report.answerTokens, ex.map { $0.ids.count - 1 }.reduce(0, +))
    }
}
