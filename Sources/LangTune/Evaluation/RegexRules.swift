import Foundation

/// An ordered list of `re.sub`-style rewrites, applied one after another.
///
/// Python's `\s` (any `str.isspace()` character) is spelled out because ICU's `\s` differs
/// from it on a few control characters; `$` uses Unix line semantics as Python's does.
struct RegexRules: @unchecked Sendable {
    // NSRegularExpression is immutable and documented thread-safe; the unchecked conformance states that.
    private let rules: [(NSRegularExpression, String)]

    static let pySpace = "[\\t\\n\\x{0B}\\f\\r\\x{1C}-\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]"

    /// `rules`: (pattern, template) with `$1`/`$0` in templates; `\s` in patterns means Python's `\s`.
    init(_ rules: [(String, String)]) {
        self.rules = rules.map { pattern, template in
            let p = pattern.replacingOccurrences(of: "\\s", with: Self.pySpace)
            // The patterns are constants of this file; a bad one is a programming error.
            let re = try! NSRegularExpression(pattern: p, options: [.useUnixLineSeparators])
            return (re, template)
        }
    }

    func apply(_ text: String) -> String {
        var s = text
        for (re, template) in rules {
            s = re.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: template)
        }
        return s
    }
}

/// NLTK's `NLTKWordTokenizer` (what `nltk.word_tokenize(text, preserve_line=True)` runs): the
/// improved Penn Treebank rules for quotes, punctuation, brackets and English contractions.
/// Implemented from NLTK 3.10's rule list; CMRC 2018's evaluation uses it for non-Han text.
public enum NLTKWordTokenizer {
    static let starting = RegexRules([
        ("([«“‘„]|[`]+)", " $1 "),
        ("^\"", "``"),
        ("(``)", " $1 "),
        ("([ \\(\\[{<])(\"|'{2})", "$1 `` "),
        ("(?i)(?<!\\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\\b)(?=\\w)", "$1 "),
    ])
    static let punctuation = RegexRules([
        ("([^\\.])(\\.)([\\]\\)}>\"'»”’ ]*+)\\s*$", "$1 $2 $3 "),
        ("([:,])([^\\d])", " $1 $2"),
        ("([:,])$", " $1 "),
        ("\\.{2,}", " $0 "),
        ("[;@#$%&]", " $0 "),
        ("[\\u2012-\\u2015]", " $0 "),
        ("([^\\.])(\\.)([\\]\\)}>\"']*)\\s*$", "$1 $2$3 "),
        ("[?!]", " $0 "),
        ("([^'])' ", "$1 ' "),
        ("[*]", " $0 "),
        ("[\\]\\[\\(\\)\\{\\}\\<\\>]", " $0 "),
        ("--", " -- "),
    ])
    static let ending = RegexRules([
        ("([»”’])", " $1 "),
        ("''", " '' "),
        ("\"", " '' "),
        ("\\s+", " "),
        ("([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 "),
        ("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 "),
        ("(?i)\\b(can)(not)\\b", " $1 $2 "),
        ("(?i)\\b(d)('ye)\\b", " $1 $2 "),
        ("(?i)\\b(gim)(me)\\b", " $1 $2 "),
        ("(?i)\\b(gon)(na)\\b", " $1 $2 "),
        ("(?i)\\b(got)(ta)\\b", " $1 $2 "),
        ("(?i)\\b(lem)(me)\\b", " $1 $2 "),
        ("(?i)\\b(more)('n)\\b", " $1 $2 "),
        ("(?i)\\b(wan)(na)(?=\\s)", " $1 $2 "),
        ("(?i) ('t)(is)\\b", " $1 $2 "),
        ("(?i) ('t)(was)\\b", " $1 $2 "),
    ])

    /// The tokens of `text`, split like NLTK's word tokenizer (no sentence splitting).
    public static func tokenize(_ text: String) -> [String] {
        var s = starting.apply(text)
        s = punctuation.apply(s)
        s = ending.apply(" " + s + " ")
        return AnswerText.pySplit(s.unicodeScalars)
    }
}

/// sacrebleu's tokenizers for BLEU: `13a` (mteval-v13a, WMT's default) and `zh`.
public enum BLEUTokenizer {
    static let post = RegexRules([
        ("([\\{-\\~\\[-\\` -\\&\\(-\\+\\:-\\@\\/])", " $1 "),
        ("([^0-9])([\\.,])", "$1 $2 "),
        ("([\\.,])([^0-9])", " $1 $2"),
        ("([0-9])(-)", "$1 $2 "),
    ])

    /// sacrebleu's `Tokenizer13a` on one line, returned as its tokens.
    public static func tokenize13a(_ line: String) -> [String] {
        var s = line.replacingOccurrences(of: "<skipped>", with: "")
        s = s.replacingOccurrences(of: "-\n", with: "").replacingOccurrences(of: "\n", with: " ")
        if s.contains("&") {
            s = s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        }
        return AnswerText.pySplit(post.apply(" " + s + " ").unicodeScalars)
    }

    /// sacrebleu's `TokenizerZh`: strip, put spaces around each character it counts as Chinese,
    /// then the 13a post-tokenizer.
    public static func tokenizeZh(_ line: String) -> [String] {
        var s = String.UnicodeScalarView()
        for c in AnswerText.pyStrip(PyText.scalars(line)) {
            if isSacreBLEUChinese(c) { s.append(" "); s.append(c); s.append(" ") } else { s.append(c) }
        }
        return AnswerText.pySplit(post.apply(String(s)).unicodeScalars)
    }

    /// sacrebleu's `_is_chinese_char`, including the effect of two of its range bounds being
    /// written as 2-character strings ('\u20000' is U+2000 followed by '0'), so that those
    /// ranges compare as U+2001…U+2A6D and U+2F81…U+2FA1, and CJK Extension B is not included.
    static func isSacreBLEUChinese(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x3400...0x4DB5, 0x4E00...0x9FA5, 0x9FA6...0x9FBB, 0xF900...0xFA2D, 0xFA30...0xFA6A, 0xFA70...0xFAD9,
             0x2001...0x2A6D, 0x2F81...0x2FA1, 0xFF00...0xFFEF, 0x2E80...0x2EFF, 0x3000...0x303F, 0x31C0...0x31EF,
             0x2F00...0x2FDF, 0x2FF0...0x2FFF, 0x3100...0x312F, 0x31A0...0x31BF, 0xFE10...0xFE1F, 0xFE30...0xFE4F,
             0x2600...0x26FF, 0x2700...0x27BF, 0x3200...0x32FF, 0x3300...0x33FF:
            return true
        default:
            return false
        }
    }

    /// What sacrebleu's BLEU feeds its n-gram counter: `rstrip`, then the tokenizer.
    public static func tokens(_ s: String, language: String) -> [String] {
        var a = PyText.scalars(s)
        while let l = a.last, PyText.isSpace(l) { a.removeLast() }
        let line = PyText.string(a)
        return language == "zh" ? tokenizeZh(line) : tokenize13a(line)
    }
}
