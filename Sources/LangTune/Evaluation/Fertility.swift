import Foundation

/// How many tokens a tokenizer spends on a text: per word, per character, per byte.
/// English-centric tokenizers spend far more on Turkish and Chinese, which makes training and
/// generation slower and contexts shorter; `inspect --fertility` shows it before training.
public struct FertilityStats: Sendable, Codable, Equatable {
    /// Non-whitespace characters (Unicode scalars).
    public var characters: Int
    /// Runs of letters and digits, each Han character counted as one word.
    public var words: Int
    public var tokens: Int
    public var bytes: Int
    public var tokensPerWord: Double { words > 0 ? Double(tokens) / Double(words) : 0 }
    public var tokensPerCharacter: Double { characters > 0 ? Double(tokens) / Double(characters) : 0 }
    public var bytesPerToken: Double { tokens > 0 ? Double(bytes) / Double(tokens) : 0 }

    enum CodingKeys: String, CodingKey { case characters, words, tokens, bytes, tokensPerWord = "tokens_per_word", tokensPerCharacter = "tokens_per_character", bytesPerToken = "bytes_per_token" }
    public init(characters: Int, words: Int, tokens: Int, bytes: Int) {
        self.characters = characters
        self.words = words
        self.tokens = tokens
        self.bytes = bytes
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(characters: try c.decode(Int.self, forKey: .characters), words: try c.decode(Int.self, forKey: .words),
                  tokens: try c.decode(Int.self, forKey: .tokens), bytes: try c.decode(Int.self, forKey: .bytes))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(characters, forKey: .characters)
        try c.encode(words, forKey: .words)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(tokensPerWord, forKey: .tokensPerWord)
        try c.encode(tokensPerCharacter, forKey: .tokensPerCharacter)
        try c.encode(bytesPerToken, forKey: .bytesPerToken)
    }
}

public enum Fertility {
    /// Counts for `text`, tokenized line by line without special tokens.
    public static func measure(_ text: String, tokenizer: Tokenizer) -> FertilityStats {
        var chars = 0, words = 0, tokens = 0
        var inWord = false
        for s in text.unicodeScalars {
            if PyText.isSpace(s) { inWord = false; continue }
            chars += 1
            if QAPrompt.isHan(s) { words += 1; inWord = false; continue }
            let wordChar = s.properties.isAlphabetic || s.properties.numericType != nil
            if wordChar && !inWord { words += 1 }
            inWord = wordChar
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            tokens += tokenizer.encode(String(line), addSpecialTokens: false).count
        }
        return FertilityStats(characters: chars, words: words, tokens: tokens, bytes: text.utf8.count)
    }

    /// The text of a file: a dataset's questions, answers and (distinct) contexts, or plain text.
    public static func text(ofFile path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError(file: path, "cannot read the file (missing or unreadable)")
        }
        let format = DatasetFormat.detect(path: path, head: data)
        if format == .text {
            guard let s = String(data: data, encoding: .utf8) else { throw DatasetError(file: path, "not valid UTF-8 text") }
            return s
        }
        var parts: [String] = []
        var seen = Set<ScalarKey>()
        for e in try DatasetReader.read(path, format: format) {
            switch e.body {
            case .qa(let q):
                if seen.insert(ScalarKey(q.context)).inserted { parts.append(q.context) }
                parts.append(q.question)
                if let a = q.answers.first { parts.append(a) }
            case .chat(let messages): parts += messages.map(\.content)
            case .text(let t): parts.append(t)
            }
        }
        return parts.joined(separator: "\n")
    }

    /// English reference text: data/fertility/en.txt (data/fertility/tr.txt and zh.txt are
    /// translations of it), built in so the comparison works from any folder.
    public static let englishReference = """
The old harbour town sits where the river meets the sea. Fishing boats leave before dawn and come back in the afternoon, when the market by the water fills with buyers, cats and gulls.

In the nineteenth century the town grew quickly. A railway reached it in 1871, a new bridge was built over the river, and the population doubled within thirty years. Many of the stone houses near the harbour date from that time.

The town library was founded by a teacher who collected books from her neighbours. Today it holds more than forty thousand volumes, including maps of the coast drawn by sailors two hundred years ago.

Every spring the town holds a music festival. Students, families and visitors from other countries listen to concerts in the square, and the streets stay busy until midnight.
"""
}
