import Foundation
import XCTest
@testable import LangTune

/// The public API: family detection, tools/documents/variables, JSON input, Codable messages.
final class ChatTemplateAPITests: XCTestCase {
    func testFamilyDetection() throws {
        XCTAssertEqual(try ChatTemplate("{{ '<|im_start|>' + messages[0]['content'] }}").family, .chatml)
        XCTAssertEqual(try ChatTemplate("{{ '<|start_header_id|>user<|end_header_id|>' }}").family, .llama3)
        XCTAssertEqual(try ChatTemplate("{{ '[INST] <<SYS>>\\n' }}").family, .llama2)
        XCTAssertEqual(try ChatTemplate("{{ '[INST] ' }}").family, .mistral)
        XCTAssertEqual(try ChatTemplate("{{ '<start_of_turn>user' }}").family, .gemma)
        XCTAssertEqual(try ChatTemplate("{{ '<s>user' }}").family, .unknown)
        XCTAssertEqual(ChatTemplateFamily.detect(""), .unknown)
    }

    static let toolTemplate = "{{- bos_token }}\n{%- if tools is not none %}\n    {{- 'Tools:\\n' }}\n    {%- for t in tools %}\n        {{- t | tojson }}\n        {{- '\\n' }}\n        {{- t.function.parameters | tojson(indent=4) }}\n        {{- '\\n' }}\n    {%- endfor %}\n{%- endif %}\n{%- if documents %}{{ documents | map(attribute='title') | join(', ') }}{% endif %}\n{%- for m in messages %}\n    {{- m.role ~ ': ' ~ m.content | trim ~ '\\n' }}\n{%- endfor %}\n{%- if date_string is defined %}{{ date_string }}{% endif %}\n"

    static let toolJSON = #"[{"type": "function", "function": {"name": "get_weather", "description": "Hava durumu — «şimdi»", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7.5}}, "required": ["city"]}}}]"#

    /// Expected strings rendered by transformers 5.24's `render_jinja_template`.
    func testToolsDocumentsAndVariables() throws {
        let t = try ChatTemplate(Self.toolTemplate)
        guard case .array(let tools) = try TemplateJSON(parsing: Self.toolJSON) else { return XCTFail("tools") }
        let docs: [TemplateJSON] = [.object([.init("title", .string("A")), .init("text", .string("x"))]),
                                    .object([.init("title", .string("B")), .init("text", .string("y"))])]
        let messages = [ChatMessage(role: "user", content: " Weather in İzmir? ")]
        let options = ChatTemplateRenderOptions(tools: tools, documents: docs, variables: ["date_string": .string("26 Jul 2024")])
        let out = try t.render(messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>", options: options)
        let want = "<s>Tools:\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Hava durumu — «şimdi»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 7.5}}, \"required\": [\"city\"]}}}\n{\n    \"type\": \"object\",\n    \"properties\": {\n        \"city\": {\n            \"type\": \"string\"\n        },\n        \"days\": {\n            \"type\": \"integer\",\n            \"minimum\": 1,\n            \"maximum\": 7.5\n        }\n    },\n    \"required\": [\n        \"city\"\n    ]\n}\nA, Buser: Weather in İzmir?\n26 Jul 2024"
        XCTAssertEqual(Array(out.utf8), Array(want.utf8), out.debugDescription)

        // Without tools, transformers passes tools=None and documents=None.
        let plain = try t.render(messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        XCTAssertEqual(plain, "<s>user: Weather in İzmir?\n")
    }

    func testTemplateJSONParsing() throws {
        let v = try TemplateJSON(parsing: #" {"z": [1, -2.5e3, true, null, "a\u00e9\ud83d\ude00\n"], "a": {}, "z": 0} "#)
        XCTAssertEqual(v, .object([.init("z", .int(0)), .init("a", .object([]))]))
        let w = try TemplateJSON(parsing: #"[1, -2.5e3, true, null, "a\u00e9\ud83d\ude00\n"]"#)
        XCTAssertEqual(w, .array([.int(1), .double(-2500), .bool(true), .null, .string("aé😀\n")]))
        for bad in ["", "[1,]", "{\"a\" 1}", "\"\\x\"", "[1] 2", "\"\\u12G4\"", "nul", "-", "01x"] {
            XCTAssertThrowsError(try TemplateJSON(parsing: bad), bad)
        }
    }

    func testChatMessageCodable() throws {
        let m = ChatMessage(role: "user", content: "e\u{301} ok")
        let data = try JSONEncoder().encode(m)
        let back = try JSONDecoder().decode(ChatMessage.self, from: data)
        XCTAssertEqual(Array(back.content.unicodeScalars), Array(m.content.unicodeScalars))
        XCTAssertEqual(back.role, "user")
    }

    /// Content is passed through code point for code point: no Unicode normalization.
    func testRenderingKeepsCodePoints() throws {
        let t = try ChatTemplate("{% for m in messages %}[{{ m.content }}]{{ m.content | length }}{% endfor %}")
        let out = try t.render(messages: [.init(role: "user", content: "e\u{301}"), .init(role: "user", content: "\u{e9}")],
                               addGenerationPrompt: false, bosToken: "", eosToken: "")
        XCTAssertEqual(Array(out.utf8), Array("[e\u{301}]2[\u{e9}]1".utf8))
    }

    func testHostileNestingIsAnErrorNotACrash() throws {
        let parens = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        XCTAssertThrowsError(try ChatTemplate("{{ \(parens) }}"))
        let blocks = String(repeating: "{% if true %}", count: 5000) + String(repeating: "{% endif %}", count: 5000)
        XCTAssertThrowsError(try ChatTemplate(blocks))
        let nots = String(repeating: "not ", count: 5000)
        XCTAssertThrowsError(try ChatTemplate("{{ \(nots)true }}"))
        // Moderate nesting still works.
        let ten = String(repeating: "(", count: 10) + "1" + String(repeating: ")", count: 10)
        XCTAssertEqual(try ChatTemplate("{{ \(ten) }}").render(messages: [], addGenerationPrompt: false, bosToken: "", eosToken: ""), "1")
    }

    func testDeepRecursionIsAnErrorNotACrash() throws {
        let t = try ChatTemplate("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
        XCTAssertThrowsError(try t.render(messages: [], addGenerationPrompt: false, bosToken: "", eosToken: ""))
        let big = try ChatTemplate("{{ range(1000000) | length }}")
        XCTAssertThrowsError(try big.render(messages: [], addGenerationPrompt: false, bosToken: "", eosToken: ""))
        let overflow = try ChatTemplate("{{ 9223372036854775807 + 1 }}")
        XCTAssertThrowsError(try overflow.render(messages: [], addGenerationPrompt: false, bosToken: "", eosToken: ""))
    }
}
