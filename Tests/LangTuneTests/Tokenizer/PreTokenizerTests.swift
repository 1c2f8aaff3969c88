import XCTest
@testable import LangTune

/// Pre-tokenizer pieces against `tokenizers` 0.23.3 `pre_tokenize_str` (the byte-level
/// strings mapped back to text), for GPT-2 (ByteLevel use_regex), Llama 3 and Qwen2
/// (Split + ByteLevel) and SmolLM (Digits individual + ByteLevel).
final class PreTokenizerTests: XCTestCase {
    static let cases: [String] = [
        "x'LL x'ſ x'Ll x'RE I'S",
        "a  \n\n  b",
        "x \r\n \t y",
        "12345 abc",
        "\u{A0}\u{A0}x",
        "  ",
        "a\u{3000}\u{3000}b \u{A0}x",
        "!!!\n\nfoo",
        " ?!x",
        "  x",
        " 12 ab  ",
        "abc 123 def4",
        "a\n\n123 b   4567",
        "٣٤٥ and १२३",
        "'s 't",
        "\r\n\r\n",
        "x\r\n  \t\n y",
        "...\n\n\n  z",
        "a\u{1C}b \u{1C}\u{1D} c",
        "a\u{200B}b \u{200B} c",
        "a\u{2028}\u{2028}b",
        "x\u{85}\u{85}y",
        "Ⅻ½² x",
    ]
    static let gpt2: [[String]] = [
        ["x", "'", "LL", " x", "'", "ſ", " x", "'", "Ll", " x", "'", "RE", " I", "'", "S"],
        ["a", "  \n\n ", " b"],
        ["x", " \r\n \t", " y"],
        ["12345", " abc"],
        ["\u{A0}", "\u{A0}", "x"],
        ["  "],
        ["a", "\u{3000}", "\u{3000}", "b", " ", "\u{A0}", "x"],
        ["!!!", "\n", "\n", "foo"],
        [" ?!", "x"],
        [" ", " x"],
        [" 12", " ab", "  "],
        ["abc", " 123", " def", "4"],
        ["a", "\n", "\n", "123", " b", "  ", " 4567"],
        ["٣٤٥", " and", " १२३"],
        ["'s", " '", "t"],
        ["\r\n\r\n"],
        ["x", "\r\n  \t\n", " y"],
        ["...", "\n\n\n ", " z"],
        ["a", "\u{1C}", "b", " \u{1C}\u{1D}", " c"],
        ["a", "\u{200B}", "b", " \u{200B}", " c"],
        ["a", "\u{2028}", "\u{2028}", "b"],
        ["x", "\u{85}", "\u{85}", "y"],
        ["Ⅻ½²", " x"],
    ]
    static let llama3: [[String]] = [
        ["x", "'LL", " x", "'ſ", " x", "'Ll", " x", "'RE", " I", "'S"],
        ["a", "  \n\n", " ", " b"],
        ["x", " \r\n", " \t", " y"],
        ["123", "45", " abc"],
        ["\u{A0}", "\u{A0}x"],
        ["  "],
        ["a", "\u{3000}", "\u{3000}b", " ", "\u{A0}x"],
        ["!!!\n\n", "foo"],
        [" ?!", "x"],
        [" ", " x"],
        [" ", "12", " ab", "  "],
        ["abc", " ", "123", " def", "4"],
        ["a", "\n\n", "123", " b", "  ", " ", "456", "7"],
        ["٣٤٥", " and", " ", "१२३"],
        ["'s", " '", "t"],
        ["\r\n\r\n"],
        ["x", "\r\n  \t\n", " y"],
        ["...\n\n\n", " ", " z"],
        ["a", "\u{1C}b", " \u{1C}\u{1D}", " c"],
        ["a", "\u{200B}b", " \u{200B}", " c"],
        ["a", "\u{2028}", "\u{2028}b"],
        ["x", "\u{85}", "\u{85}y"],
        ["Ⅻ½²", " x"],
    ]
    static let qwen2: [[String]] = [
        ["x", "'LL", " x", "'ſ", " x", "'Ll", " x", "'RE", " I", "'S"],
        ["a", "  \n\n", " ", " b"],
        ["x", " \r\n", " \t", " y"],
        ["1", "2", "3", "4", "5", " abc"],
        ["\u{A0}", "\u{A0}x"],
        ["  "],
        ["a", "\u{3000}", "\u{3000}b", " ", "\u{A0}x"],
        ["!!!\n\n", "foo"],
        [" ?!", "x"],
        [" ", " x"],
        [" ", "1", "2", " ab", "  "],
        ["abc", " ", "1", "2", "3", " def", "4"],
        ["a", "\n\n", "1", "2", "3", " b", "  ", " ", "4", "5", "6", "7"],
        ["٣", "٤", "٥", " and", " ", "१", "२", "३"],
        ["'s", " '", "t"],
        ["\r\n\r\n"],
        ["x", "\r\n  \t\n", " y"],
        ["...\n\n\n", " ", " z"],
        ["a", "\u{1C}b", " \u{1C}\u{1D}", " c"],
        ["a", "\u{200B}b", " \u{200B}", " c"],
        ["a", "\u{2028}", "\u{2028}b"],
        ["x", "\u{85}", "\u{85}y"],
        ["Ⅻ", "½", "²", " x"],
    ]
    static let smollm: [[String]] = [
        ["x", "'", "LL", " x", "'", "ſ", " x", "'", "Ll", " x", "'", "RE", " I", "'", "S"],
        ["a", "  \n\n ", " b"],
        ["x", " \r\n \t", " y"],
        ["1", "2", "3", "4", "5", " abc"],
        ["\u{A0}", "\u{A0}", "x"],
        ["  "],
        ["a", "\u{3000}", "\u{3000}", "b", " ", "\u{A0}", "x"],
        ["!!!", "\n", "\n", "foo"],
        [" ?!", "x"],
        [" ", " x"],
        [" ", "1", "2", " ab", "  "],
        ["abc", " ", "1", "2", "3", " def", "4"],
        ["a", "\n\n", "1", "2", "3", " b", "   ", "4", "5", "6", "7"],
        ["٣", "٤", "٥", " and", " ", "१", "२", "३"],
        ["'s", " '", "t"],
        ["\r\n\r\n"],
        ["x", "\r\n  \t\n", " y"],
        ["...", "\n\n\n ", " z"],
        ["a", "\u{1C}", "b", " \u{1C}\u{1D}", " c"],
        ["a", "\u{200B}", "b", " \u{200B}", " c"],
        ["a", "\u{2028}", "\u{2028}", "b"],
        ["x", "\u{85}", "\u{85}", "y"],
        ["Ⅻ", "½", "²", " x"],
    ]

    private func pieces(_ pre: PreTokenizer, _ text: String) -> [[UInt8]] {
        let bytes = Array(text.utf8)
        var scratch = PreTokenizer.Scratch()
        return bytes.withUnsafeBufferPointer { buffer in
            pre.split(buffer, 0..<buffer.count, scratch: &scratch)
            var start = 0
            return scratch.ends.map { end in
                defer { start = Int(end) }
                return Array(bytes[start..<Int(end)])
            }
        }
    }

    private func check(_ pre: PreTokenizer, _ expected: [[String]], _ name: String) {
        XCTAssertEqual(expected.count, Self.cases.count)
        for (text, want) in zip(Self.cases, expected) {
            XCTAssertEqual(pieces(pre, text), want.map { Array($0.utf8) }, "\(name): \(text.debugDescription)")
        }
    }

    func testGPT2() { check(PreTokenizer(steps: [.pattern(.gpt2)], addPrefixSpace: false), Self.gpt2, "gpt2") }
    func testLlama3() { check(PreTokenizer(steps: [.pattern(.llama3)], addPrefixSpace: false), Self.llama3, "llama3") }
    func testQwen2() { check(PreTokenizer(steps: [.pattern(.qwen2)], addPrefixSpace: false), Self.qwen2, "qwen2") }
    func testSmolLM() {
        check(PreTokenizer(steps: [.individualDigits, .pattern(.gpt2)], addPrefixSpace: false), Self.smollm, "smollm")
    }

    func testGGUFPreNames() {
        XCTAssertEqual(GGUFTokenizerLoader.preTokenizer(named: "smollm")?.steps, [.individualDigits, .pattern(.gpt2)])
        XCTAssertEqual(GGUFTokenizerLoader.preTokenizer(named: "llama-bpe")?.steps, [.pattern(.llama3)])
        XCTAssertEqual(GGUFTokenizerLoader.preTokenizer(named: "qwen2")?.steps, [.pattern(.qwen2)])
        XCTAssertEqual(GGUFTokenizerLoader.preTokenizer(named: "gpt2")?.steps, [.pattern(.gpt2)])
        XCTAssertNil(GGUFTokenizerLoader.preTokenizer(named: "deepseek-llm"))
    }

    func testPatternSourcesAreRecognisedExactly() {
        XCTAssertEqual(SplitPattern(source: SplitPattern.llama3Source), .llama3)
        XCTAssertEqual(SplitPattern(source: SplitPattern.qwen2Source), .qwen2)
        XCTAssertEqual(SplitPattern(source: SplitPattern.gpt2Source), .gpt2)
        XCTAssertNil(SplitPattern(source: SplitPattern.llama3Source + "|x"))
    }
}
