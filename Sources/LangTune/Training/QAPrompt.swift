import Foundation

/// The user prompt for SQuAD-style questions: built-in templates per language,
/// language detection and placeholder filling. Evaluation renders prompts with the
/// same functions so that the model sees at test time what it saw in training.
public enum QAPrompt {
    /// Languages with a built-in template.
    public static let languages = ["tr", "zh", "en"]

    /// The built-in template of `language` (`tr`, `zh`, `en`), nil for others.
    public static func defaultTemplate(language: String) -> String? {
        switch language {
        case "tr": return "Aşağıdaki metne göre soruyu kısa ve doğru biçimde yanıtlayın.\n\nMetin: {context}\n\nSoru: {question}"
        case "zh": return "请根据下面的文章简要准确地回答问题。\n\n文章：{context}\n\n问题：{question}"
        case "en": return "Answer the question briefly and accurately, based on the passage below.\n\nPassage: {context}\n\nQuestion: {question}"
        default: return nil
        }
    }

    /// `template` with `{context}` and `{question}` replaced in one pass, so braces
    /// inside the context or question are left as they are.
    public static func fill(_ template: String, context: String, question: String) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let tail = rest[open...]
            if tail.hasPrefix("{context}") {
                out += context
                rest = tail.dropFirst("{context}".count)
            } else if tail.hasPrefix("{question}") {
                out += question
                rest = tail.dropFirst("{question}".count)
            } else {
                out += "{"
                rest = tail.dropFirst()
            }
        }
        out += rest
        return out
    }

    /// Guesses the language of a question and its passage.
    ///
    /// Han characters making up at least a fifth of the letters → `zh`; any of the
    /// Turkish-only letters ğ ı İ ş (either case), or at least two common Turkish words
    /// and more of them than common English words → `tr`; otherwise `en`.
    public static func detectLanguage(_ text: String) -> String {
        var letters = 0, han = 0, turkishLetters = 0
        for s in text.unicodeScalars {
            if isHan(s) { han += 1; letters += 1; continue }
            guard s.properties.isAlphabetic else { continue }
            letters += 1
            switch s.value {
            case 0x011E, 0x011F, 0x0130, 0x0131, 0x015E, 0x015F: turkishLetters += 1
            default: break
            }
        }
        if han > 0 && han * 5 >= letters { return "zh" }
        if turkishLetters > 0 { return "tr" }
        var tr = 0, en = 0
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter }) {
            if turkishWords.contains(String(word)) { tr += 1 }
            if englishWords.contains(String(word)) { en += 1 }
        }
        return tr >= 2 && tr > en ? "tr" : "en"
    }

    /// CJK Unified Ideographs and their extensions and compatibility block.
    static func isHan(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2EBEF, 0x30000...0x323AF, 0xF900...0xFAFF: return true
        default: return false
        }
    }

    /// Frequent Turkish words that are written without Turkish-only letters.
    static let turkishWords: Set<String> = [
        "ve", "bir", "bu", "ile", "için", "da", "de", "ne", "hangi", "nedir", "kaç", "olarak", "olan",
        "en", "çok", "gibi", "sonra", "daha", "kadar", "yıl", "yılında", "nerede", "kim", "kimdir", "mi", "mı",
        "ise", "veya", "ama", "her", "göre", "den", "dan", "ki", "olur", "oldu", "vardır", "yoktur",
    ]
    static let englishWords: Set<String> = [
        "the", "and", "of", "to", "in", "is", "was", "what", "which", "who", "when", "where", "how",
        "a", "an", "for", "on", "with", "by", "from", "that", "this", "are", "were", "as", "at",
    ]
}
