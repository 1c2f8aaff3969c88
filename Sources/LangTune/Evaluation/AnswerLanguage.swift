import Foundation

/// Which language an answer is written in, judged against the language it should be in.
///
/// Short answers often carry no evidence of a language at all ("1453", "Ankara"), so the
/// check has five outcomes instead of two. The rules (decided here; docs/EVALUATION.md):
/// - `empty`: nothing but whitespace.
/// - `neutral`: no letters, or too little to tell (names, numbers, one or two Latin words with
///   neither Turkish nor English evidence).
/// - Chinese expected: `target` when Han characters are at least half of the letters.
/// - Turkish expected: `target` when the letters are Latin and the answer has Turkish evidence
///   (one of ç ğ ı İ ö ş ü, or more common Turkish words than common English ones).
/// - `english`: mostly Latin letters with common English words and no Turkish evidence, or
///   (for Chinese) Latin text of three or more words.
/// - `other`: anything else (another script, or Latin text where Chinese was expected that is
///   not English).
public enum AnswerLanguage: String, Sendable, Codable, CaseIterable {
    case target, neutral, english, other, empty

    /// Whether this answer counts towards language fidelity: in the expected language, or
    /// carrying no evidence of another one.
    public var faithful: Bool { self == .target || self == .neutral }

    /// Classifies `answer` against `expected` (`tr`, `zh`, `en`).
    public static func classify(_ answer: String, expected: String) -> AnswerLanguage {
        var han = 0, latin = 0, otherScript = 0, turkishLetters = 0
        for s in answer.unicodeScalars {
            if QAPrompt.isHan(s) { han += 1; continue }
            guard s.properties.isAlphabetic else { continue }
            if isLatin(s) {
                latin += 1
                switch s.value {
                case 0xE7, 0xC7, 0x011E, 0x011F, 0x0130, 0x0131, 0xF6, 0xD6, 0x015E, 0x015F, 0xFC, 0xDC: turkishLetters += 1
                default: break
                }
            } else if !(0x3000...0x303F).contains(s.value) {
                otherScript += 1
            }
        }
        if answer.unicodeScalars.allSatisfy({ PyText.isSpace($0) }) { return .empty }
        let letters = han + latin + otherScript
        if letters == 0 { return .neutral }
        let words = answer.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
        let trWords = words.filter { QAPrompt.turkishWords.contains($0) }.count
        let enWords = words.filter { QAPrompt.englishWords.contains($0) }.count
        let latinWords = words.filter { $0.unicodeScalars.contains(where: isLatin) }.count

        switch expected {
        case "zh":
            if han * 2 >= letters { return .target }
            if latin * 2 > letters {
                if enWords > 0 || latinWords >= 3 { return .english }
                return .neutral
            }
            return .other
        case "tr":
            if latin * 2 <= letters { return .other }
            let turkish = turkishLetters > 0 || (trWords > 0 && trWords > enWords)
            if turkish { return .target }
            if enWords > 0 { return .english }
            return .neutral
        default:
            if latin * 2 <= letters { return .other }
            if turkishLetters > 0 || trWords > enWords { return .other }
            return enWords > 0 ? .target : .neutral
        }
    }

    static func isLatin(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x41...0x5A, 0x61...0x7A, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x024F, 0x1E00...0x1EFF: return true
        default: return false
        }
    }
}
