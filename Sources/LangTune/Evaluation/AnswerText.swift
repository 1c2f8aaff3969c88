import Foundation

/// Answer normalization and tokenization for Q&A metrics, per language.
///
/// - English: SQuAD v1.1's `normalize_answer` (lower-case, drop ASCII punctuation, drop the
///   words a/an/the, collapse whitespace), split on whitespace.
/// - Turkish: the same after Turkish lower-casing (İ → i, I → ı), so "ISPARTA" and "ısparta" match.
/// - Chinese: CMRC 2018's mixed segmentation: every Han character (U+4E00–U+9FA5) is a token,
///   runs of other characters are split by NLTK's word tokenizer; CMRC's punctuation list removed.
///
/// Everything works on Unicode scalars and compares by code point, as Python does: Swift's
/// `String ==` is canonical equivalence, which the reference scripts do not use.
public enum AnswerText {
    /// The tokens that F1 and ROUGE-L compare for `language` (`zh`, `tr`, anything else = English rules).
    public static func tokens(_ s: String, language: String) -> [String] {
        switch language {
        case "zh": return cmrcSegments(s, removePunctuation: true)
        case "tr": return squadTokens(turkishLower(s))
        default: return squadTokens(s)
        }
    }

    /// The string exact match compares: SQuAD normalization (Turkish lower-casing first for `tr`),
    /// CMRC's `remove_punctuation` for `zh`.
    public static func exactMatchForm(_ s: String, language: String) -> String {
        switch language {
        case "zh": return cmrcRemovePunctuation(s)
        case "tr": return squadNormalize(turkishLower(s))
        default: return squadNormalize(s)
        }
    }

    /// İ → i and I → ı; other characters unchanged (then lower-cased by the normalizer).
    public static func turkishLower(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            switch c.value {
            case 0x0130: out.append("i")
            case 0x49: out.append("\u{0131}")
            default: out.append(c)
            }
        }
        return String(out)
    }

    /// SQuAD v1.1 `normalize_answer`: lower, remove `string.punctuation`, replace the words
    /// a/an/the (maximal runs of regex word characters) by a space, collapse whitespace.
    public static func squadNormalize(_ s: String) -> String { squadTokens(s).joined(separator: " ") }

    /// The words of `squadNormalize(s)` (split there, not by splitting the joined string, so a
    /// token that starts with a combining mark stays apart from the space before it).
    static func squadTokens(_ s: String) -> [String] {
        let lowered = PyText.scalars(PyText.lower(s)).filter { !isASCIIPunctuation($0) }
        // re.sub(r'\b(a|an|the)\b', ' ', text): a match is a whole run of word characters.
        var replaced: [Unicode.Scalar] = []
        var i = 0
        while i < lowered.count {
            if isWordScalar(lowered[i]) {
                var j = i
                while j < lowered.count && isWordScalar(lowered[j]) { j += 1 }
                let run = lowered[i..<j]
                if run.elementsEqual("a".unicodeScalars) || run.elementsEqual("an".unicodeScalars)
                    || run.elementsEqual("the".unicodeScalars) {
                    replaced.append(" ")
                } else {
                    replaced.append(contentsOf: run)
                }
                i = j
            } else {
                replaced.append(lowered[i])
                i += 1
            }
        }
        return pySplit(replaced)
    }

    /// Python's `str.split()` (no argument) over scalars.
    static func pySplit<C: Collection>(_ scalars: C) -> [String] where C.Element == Unicode.Scalar {
        var out: [String] = []
        var cur = String.UnicodeScalarView()
        for c in scalars {
            if PyText.isSpace(c) {
                if !cur.isEmpty { out.append(String(cur)); cur = String.UnicodeScalarView() }
            } else {
                cur.append(c)
            }
        }
        if !cur.isEmpty { out.append(String(cur)) }
        return out
    }

    /// Python's `str.strip()` over scalars.
    static func pyStrip(_ a: [Unicode.Scalar]) -> ArraySlice<Unicode.Scalar> {
        var lo = 0, hi = a.count
        while lo < hi && PyText.isSpace(a[lo]) { lo += 1 }
        while hi > lo && PyText.isSpace(a[hi - 1]) { hi -= 1 }
        return a[lo..<hi]
    }

    static func isASCIIPunctuation(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        default: return false
        }
    }

    /// Python `re`'s `\w` for `str` patterns: alphanumeric (letters, anything with a numeric value) or `_`.
    static func isWordScalar(_ c: Unicode.Scalar) -> Bool {
        if c == "_" { return true }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return c.properties.numericType != nil
        }
    }

    // MARK: CMRC 2018

    /// CMRC 2018's punctuation list. Its entry "……" is two characters and so never matches one.
    static let cmrcPunctuation: Set<UInt32> = Set("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』".unicodeScalars.map(\.value))

    static func isCMRCHan(_ c: Unicode.Scalar) -> Bool { (0x4E00...0x9FA5).contains(c.value) }

    /// CMRC 2018 `mixed_segmentation`: lower-case and strip, then Han characters (and, when
    /// punctuation is kept, punctuation marks) are single tokens and the text between them goes
    /// through NLTK's word tokenizer.
    public static func cmrcSegments(_ s: String, removePunctuation: Bool) -> [String] {
        let chars = pyStrip(PyText.scalars(PyText.lower(s)))
        var out: [String] = []
        var pending = String.UnicodeScalarView()
        func flush() {
            if !pending.isEmpty { out += NLTKWordTokenizer.tokenize(String(pending)); pending = String.UnicodeScalarView() }
        }
        for c in chars {
            let punct = cmrcPunctuation.contains(c.value)
            if removePunctuation && punct { continue }
            if isCMRCHan(c) || punct {
                flush()
                out.append(String(c))
            } else {
                pending.append(c)
            }
        }
        flush()
        return out
    }

    /// CMRC 2018 `remove_punctuation`: lower-case, strip, drop the punctuation list.
    public static func cmrcRemovePunctuation(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for c in pyStrip(PyText.scalars(PyText.lower(s))) where !cmrcPunctuation.contains(c.value) { out.append(c) }
        return String(out)
    }
}

/// Code-point equality, as Python compares strings.
@inline(__always) func sameScalars(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

/// A dictionary key that compares strings by code points.
struct ScalarKey: Hashable {
    let bytes: [UInt8]
    init(_ s: String) { bytes = Array(s.utf8) }
}
