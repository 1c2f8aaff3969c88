import Foundation
import XCTest
@testable import LangTune

/// One language case: `expected == nil` means jinja2 raised, so we must throw too.
struct LanguageCase {
    let category: String
    let name: String
    let template: String
    let expected: String?
    init(_ category: String, _ name: String, _ template: String, _ expected: String?) {
        self.category = category
        self.name = name
        self.template = template
        self.expected = expected
    }
}

/// The template language itself, case by case against jinja2's output (JinjaLanguageCases.swift).
final class JinjaLanguageTests: XCTestCase {
    /// The variables every case renders with (the same ones jinja2 was given).
    static let variablesJSON = #"""
    {"d": {"b": 2, "a": 1}, "xs": [{"n": 1, "ok": true}, {"n": 2, "ok": false}, {"n": 3, "ok": true}],
     "messages": [{"role": "system", "content": " S "}, {"role": "user", "content": "Hi \ud83d\ude00\n"}],
     "content": "\u3000\u00a0 spaced\tout\u2003 \n", "n": null, "tools": null, "documents": null}
    """#
    /// 2024-07-26 09:05:03 UTC, the clock `strftime_now` reads in these tests.
    static let now = Date(timeIntervalSince1970: 1_721_984_703)

    static func variables() throws -> [String: JValue] {
        guard case .object(let members) = try TemplateJSON(parsing: variablesJSON) else {
            throw XCTSkip("variables are not an object")
        }
        var vars: [String: JValue] = [:]
        for m in members { vars[m.key] = m.value.jinjaValue }
        return vars
    }

    static func render(_ template: String, _ vars: [String: JValue]) throws -> String {
        try ChatTemplate(template).render(variables: vars, now: now, timeZone: TimeZone(identifier: "UTC")!)
    }

    private func run(_ category: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let vars = try Self.variables()
        let cases = Self.cases.filter { $0.category == category }
        XCTAssertFalse(cases.isEmpty, "no cases for \(category)", file: file, line: line)
        for c in cases {
            if let expected = c.expected {
                do {
                    let out = try Self.render(c.template, vars)
                    XCTAssertEqual(Array(out.utf8), Array(expected.utf8),
                                   "\(c.name): got \(out.debugDescription), want \(expected.debugDescription)", file: file, line: line)
                } catch {
                    XCTFail("\(c.name): unexpected error \(error)", file: file, line: line)
                }
            } else {
                XCTAssertThrowsError(try Self.render(c.template, vars), "\(c.name) should fail", file: file, line: line)
            }
        }
    }

    func testWhitespaceControl() throws { try run("whitespace") }
    func testTrimAndLstripBlocks() throws { try run("blocks") }
    func testLoops() throws { try run("loops") }
    func testScopingAndNamespace() throws { try run("scoping") }
    func testMacros() throws { try run("macros") }
    func testExpressions() throws { try run("expressions") }
    func testFilters() throws { try run("filters") }
    func testTests() throws { try run("tests") }
    func testLazyFiltersReturnIterators() throws { try run("iterators") }
    func testUndefinedSemantics() throws { try run("undefined") }
    func testRuntimeErrorsThrow() throws { try run("runtime_errors") }

    func testEveryCaseHasAKnownCategory() {
        let known: Set<String> = ["whitespace", "blocks", "loops", "scoping", "macros", "expressions", "filters",
                                  "tests", "undefined", "runtime_errors", "iterators"]
        for c in Self.cases { XCTAssertTrue(known.contains(c.category), c.name) }
    }

    // MARK: errors with positions

    private func syntaxError(_ template: String) -> (line: Int, column: Int, message: String)? {
        do {
            _ = try ChatTemplate(template)
        } catch ChatTemplateError.syntax(let line, let column, let message) {
            return (line, column, message)
        } catch {
            XCTFail("\(template.debugDescription): not a syntax error: \(error)")
        }
        return nil
    }

    /// Lines agree with jinja2's `TemplateSyntaxError.lineno`; columns point at the offending token.
    func testSyntaxErrorsCarryLineAndColumn() {
        let expectations: [(String, Int, Int, String)] = [
            ("{% if x %}\n{% endfor %}", 2, 4, "Encountered unknown tag 'endfor'."),
            ("{% for x in y %}", 1, 17, "Unexpected end of template. Jinja was looking for the following tags: 'endfor' or 'else'."),
            ("line1\n{% if %}{% endif %}", 2, 7, "Expected an expression, got 'end of statement block'"),
            ("{{ 1 + }}", 1, 8, "unexpected 'end of print statement'"),
            ("a\nb\n{{ 'unterminated }}", 3, 4, "unexpected char \"'\" at 7"),
            ("{# unterminated comment", 1, 1, "Missing end of comment tag"),
            ("x\n  {% foo %}", 2, 6, "Encountered unknown tag 'foo'."),
            ("{{ x | nofilter }}", 1, 8, "No filter named 'nofilter'."),
            ("\n\n{{ x is notatest }}", 3, 9, "No test named 'notatest'."),
            ("{{ a.b.c }", 1, 10, "unexpected '}'"),
            ("{{ [1, 2 }}", 1, 10, "unexpected '}', expected ']'"),
            ("{% if true %}\nok\n", 2, 3, "Unexpected end of template."),
            ("{% macro m(a=1, b) %}{% endmacro %}", 1, 18, "non-default argument follows default argument"),
            ("{{ 'a' }}\n{{ x y }}", 2, 6, "expected token 'end of print statement', got 'y'"),
            ("{% raw %}never closed", 1, 1, "Missing end of raw directive"),
            ("{% break %}", 1, 4, "'break' outside of a loop"),
            ("{% set 1 = 2 %}", 1, 8, "can't assign"),
        ]
        for (template, line, column, prefix) in expectations {
            guard let e = syntaxError(template) else {
                XCTFail("\(template.debugDescription) compiled")
                continue
            }
            XCTAssertEqual(e.line, line, template.debugDescription)
            XCTAssertEqual(e.column, column, template.debugDescription)
            XCTAssertTrue(e.message.hasPrefix(prefix), "\(template.debugDescription): \(e.message)")
        }
    }

    func testUnknownFilterInsideIfFailsOnlyWhenReached() throws {
        let t = try ChatTemplate("{% if false %}{{ x | nofilter }}{% endif %}ok")
        XCTAssertEqual(try t.render(variables: [:], now: Self.now, timeZone: .current), "ok")
        let reached = try ChatTemplate("{% if true %}{{ 'x' | nofilter }}{% endif %}")
        XCTAssertThrowsError(try reached.render(variables: [:], now: Self.now, timeZone: .current))
    }

    func testRuntimeErrorsCarryTheLine() {
        do {
            _ = try Self.render("line1\n{% if true %}\n  {{ undefined_fn() }}\n{% endif %}", [:])
            XCTFail("rendered")
        } catch ChatTemplateError.runtime(let line, let message) {
            XCTAssertEqual(line, 3)
            XCTAssertEqual(message, "'undefined_fn' is undefined")
        } catch {
            XCTFail("\(error)")
        }
    }

    func testRaiseExceptionIsTyped() {
        do {
            _ = try Self.render("{% if true %}{{ raise_exception('Conversation roles must alternate!') }}{% endif %}", [:])
            XCTFail("rendered")
        } catch let e as ChatTemplateError {
            XCTAssertEqual(e, .raised(message: "Conversation roles must alternate!"))
            XCTAssertEqual(e.description, "template raised: Conversation roles must alternate!")
        } catch {
            XCTFail("\(error)")
        }
    }

    func testErrorDescriptions() {
        XCTAssertEqual(ChatTemplateError.syntax(line: 3, column: 9, message: "No test named 'x'.").description,
                       "chat template syntax error at line 3, column 9: No test named 'x'.")
        XCTAssertEqual(ChatTemplateError.runtime(line: 2, message: "'u' is undefined").description,
                       "chat template error at line 2: 'u' is undefined")
    }

    /// `strftime_now` formats the injected clock in the C locale, like CPython on Linux.
    func testStrftimeNow() throws {
        let out = try Self.render("{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A, %B %-d') }}|{{ strftime_now('%y%j%%') }}|{{ strftime_now('%I %p %a %e') }}", [:])
        XCTAssertEqual(out, "2024-07-26 09:05:03|26 Jul 2024|Friday, July 26|24208%|09 AM Fri 26")
    }
}
