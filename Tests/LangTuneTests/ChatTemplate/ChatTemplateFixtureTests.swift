import Foundation
import XCTest
@testable import LangTune

/// Real model templates against transformers' `apply_chat_template` output
/// (Tests/Fixtures/chat/*.json, made by Tests/Reference/chat_fixtures.py).
final class ChatTemplateFixtureTests: XCTestCase {
    struct Fixture: Decodable {
        let family: String
        let template: String
        let bos_token: String?
        let eos_token: String?
        let cases: [Case]
    }

    struct Case: Decodable {
        let name: String
        let messages: [ChatMessage]
        let add_generation_prompt: Bool
        let rendered: String?
        let expect_error: Bool?
        let error: String?
    }

    static func load(_ family: String) throws -> Fixture {
        let url = TestPaths.fixture("chat/\(family).json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            XCTFail("missing committed fixture \(url.path)")
            throw XCTSkip("missing fixture")
        }
        return try JSONDecoder().decode(Fixture.self, from: data)
    }

    /// A null special token is passed as "" — allowed only where the template never reads it.
    static func token(_ value: String?, _ name: String, _ fixture: Fixture) -> String {
        if let value { return value }
        XCTAssertFalse(fixture.template.contains(name), "\(fixture.family): template reads \(name), which is null")
        return ""
    }

    private func checkFixture(_ family: String, expecting detected: ChatTemplateFamily) throws {
        let fixture = try Self.load(family)
        let template = try ChatTemplate(fixture.template)
        XCTAssertEqual(template.family, detected, family)
        let bos = Self.token(fixture.bos_token, "bos_token", fixture)
        let eos = Self.token(fixture.eos_token, "eos_token", fixture)
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 10)
        for c in fixture.cases {
            let render = {
                try template.render(messages: c.messages, addGenerationPrompt: c.add_generation_prompt, bosToken: bos, eosToken: eos)
            }
            if c.expect_error == true {
                XCTAssertThrowsError(try render(), "\(family)/\(c.name) should fail") { error in
                    // transformers raises TemplateError(message) from raise_exception.
                    XCTAssertEqual(error as? ChatTemplateError, .raised(message: c.error ?? ""), "\(family)/\(c.name)")
                }
                continue
            }
            guard let want = c.rendered else {
                XCTFail("\(family)/\(c.name): no expectation")
                continue
            }
            do {
                let got = try render()
                XCTAssertEqual(Array(got.utf8), Array(want.utf8),
                               "\(family)/\(c.name): got \(got.debugDescription), want \(want.debugDescription)")
            } catch {
                XCTFail("\(family)/\(c.name): \(error)")
            }
        }
    }

    func testSmolLM2() throws { try checkFixture("smollm2", expecting: .chatml) }
    func testLlama3() throws { try checkFixture("llama3", expecting: .llama3) }
    func testLlama2() throws { try checkFixture("llama2", expecting: .llama2) }
    func testMistral() throws { try checkFixture("mistral", expecting: .mistral) }
    func testQwen2() throws { try checkFixture("qwen2", expecting: .chatml) }

    // MARK: prefix property

    /// Conversations for the prefix check beyond the fixtures' own: system prompts, several
    /// turns, and replies with surrounding whitespace (which some templates trim).
    static let extraConversations: [[ChatMessage]] = [
        [.init(role: "system", content: "Be brief."), .init(role: "user", content: "2+2?"), .init(role: "assistant", content: "4"),
         .init(role: "user", content: "And 3+3?"), .init(role: "assistant", content: " 6 \n")],
        [.init(role: "user", content: "Merhaba"), .init(role: "assistant", content: "\n\nSelam! Nasılsın?  "),
         .init(role: "user", content: "İyiyim."), .init(role: "assistant", content: "")],
        [.init(role: "user", content: "写一句诗"), .init(role: "assistant", content: "床前明月光，疑是地上霜。")],
    ]

    /// Training masks the answer by rendering the conversation up to turn k with the
    /// generation prompt and taking the rest of the full rendering as the answer; that needs
    /// `render(messages[..<k], addGenerationPrompt: true)` to be a byte prefix of
    /// `render(messages[...k], addGenerationPrompt: false)` whenever message k is the assistant's.
    private func checkPrefixProperty(_ family: String) throws {
        let fixture = try Self.load(family)
        let template = try ChatTemplate(fixture.template)
        let bos = Self.token(fixture.bos_token, "bos_token", fixture)
        let eos = Self.token(fixture.eos_token, "eos_token", fixture)
        let conversations = fixture.cases.filter { $0.expect_error != true }.map(\.messages) + Self.extraConversations
        var checked = 0
        for messages in conversations {
            for k in messages.indices where messages[k].role == "assistant" {
                let prompt: String, full: String
                do {
                    prompt = try template.render(messages: Array(messages[..<k]), addGenerationPrompt: true, bosToken: bos, eosToken: eos)
                    full = try template.render(messages: Array(messages[...k]), addGenerationPrompt: false, bosToken: bos, eosToken: eos)
                } catch ChatTemplateError.raised {
                    continue  // the template rejects this conversation (e.g. a system turn)
                }
                XCTAssertTrue(full.utf8.starts(with: prompt.utf8),
                              "\(family): prompt \(prompt.debugDescription) is not a prefix of \(full.debugDescription)")
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 5, "\(family): too few assistant turns checked")
    }

    func testPrefixPropertySmolLM2() throws { try checkPrefixProperty("smollm2") }
    func testPrefixPropertyLlama3() throws { try checkPrefixProperty("llama3") }
    func testPrefixPropertyLlama2() throws { try checkPrefixProperty("llama2") }
    func testPrefixPropertyMistral() throws { try checkPrefixProperty("mistral") }
    func testPrefixPropertyQwen2() throws { try checkPrefixProperty("qwen2") }

    /// The property is not universal: a template that moves the system prompt into the last
    /// user turn (as Mistral v0.3 / Nemo do) breaks it, and the check must notice.
    func testPrefixPropertyCheckDetectsSystemInLastUserTurn() throws {
        let source = """
        {%- if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}{% set msgs = messages[1:] %}\
        {%- else %}{% set msgs = messages %}{% endif %}
        {%- for m in msgs %}
            {%- if m['role'] == 'user' %}
                {%- if loop.last and system is defined %}{{ '[INST]' + system + '\\n\\n' + m['content'] + '[/INST]' }}
                {%- else %}{{ '[INST]' + m['content'] + '[/INST]' }}{% endif %}
            {%- else %}{{ m['content'] + eos_token }}{% endif %}
        {%- endfor %}
        """
        let t = try ChatTemplate(source)
        XCTAssertEqual(t.family, .mistral)
        let messages: [ChatMessage] = [.init(role: "system", content: "S"), .init(role: "user", content: "Q"), .init(role: "assistant", content: "A")]
        let prompt = try t.render(messages: Array(messages[..<2]), addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        let full = try t.render(messages: messages, addGenerationPrompt: false, bosToken: "<s>", eosToken: "</s>")
        XCTAssertEqual(prompt, "[INST]S\n\nQ[/INST]")
        XCTAssertEqual(full, "[INST]Q[/INST]A</s>")
        XCTAssertFalse(full.utf8.starts(with: prompt.utf8))
    }
}
