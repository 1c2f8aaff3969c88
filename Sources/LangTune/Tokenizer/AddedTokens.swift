/// A token matched literally in the input before pre-tokenization (`added_tokens`
/// of tokenizer.json; GGUF control and user-defined tokens).
struct AddedTokenSpec: Sendable {
    var id: Int32
    var content: [UInt8]
    var special: Bool
    var singleWord = false
    var lstrip = false
    var rstrip = false
    var normalized = false
}

/// A piece of input: either an added token (with the bytes it covers) or plain text.
struct InputSegment {
    /// The added token's id, or -1 for text still to be pre-tokenized.
    var id: Int32
    var start: Int
    var end: Int
}

/// Finds added tokens in text as `tokenizers`' `AddedVocabulary::find_matches` does:
/// leftmost-longest literal matches (Aho-Corasick `LeftmostLongest`), then the
/// `single_word`, `lstrip` and `rstrip` rules of each token.
struct AddedTokenMatcher: Sendable {
    private let tokens: [AddedTokenSpec]
    /// Trie over bytes: per node, its children as (byte, node) pairs; `terminal[node]` indexes `tokens` or is -1.
    private let rootChildren: [Int32]
    private let children: [[(UInt8, Int32)]]
    private let terminal: [Int32]

    var isEmpty: Bool { tokens.isEmpty }

    init(_ tokens: [AddedTokenSpec]) {
        var children: [[(UInt8, Int32)]] = [[]]
        var terminal: [Int32] = [-1]
        for (index, token) in tokens.enumerated() where !token.content.isEmpty {
            var node = 0
            for b in token.content {
                if let child = children[node].first(where: { $0.0 == b })?.1 {
                    node = Int(child)
                } else {
                    children.append([])
                    terminal.append(-1)
                    children[node].append((b, Int32(children.count - 1)))
                    node = children.count - 1
                }
            }
            // The first token with this content keeps it, as the first pattern wins in Aho-Corasick.
            if terminal[node] < 0 { terminal[node] = Int32(index) }
        }
        var root = [Int32](repeating: -1, count: 256)
        for (b, child) in children[0] { root[Int(b)] = child }
        self.tokens = tokens
        self.rootChildren = root
        self.children = children
        self.terminal = terminal
    }

    /// The longest token starting at `pos` (its index in `tokens`, its length), if any.
    @inline(__always)
    private func longestMatch(_ text: UnsafeBufferPointer<UInt8>, _ pos: Int, _ end: Int) -> (Int, Int)? {
        var node = Int(rootChildren[Int(text[pos])])
        if node < 0 { return nil }
        var best: (Int, Int)? = nil
        var i = pos + 1
        while true {
            if terminal[node] >= 0 { best = (Int(terminal[node]), i - pos) }
            if i >= end { break }
            let b = text[i]
            guard let child = children[node].first(where: { $0.0 == b })?.1 else { break }
            node = Int(child)
            i += 1
        }
        return best
    }

    /// Splits `text[range]`, appending to `out` the segments in order (empty ones left out).
    func split(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [InputSegment]) {
        let lo = range.lowerBound, hi = range.upperBound
        var startOffset = lo
        var pos = lo
        func push(_ id: Int32, _ s: Int, _ e: Int) {
            if s < e { out.append(InputSegment(id: id, start: s, end: e)) }
        }
        while pos < hi {
            guard let (index, length) = longestMatch(text, pos, hi) else {
                pos += 1
                continue
            }
            var start = pos
            var stop = pos + length
            pos = stop
            let token = tokens[index]
            if token.singleWord {
                let startSpace = start == lo || !AddedTokenMatcher.endsWithWord(text, lo, start)
                let stopSpace = stop == hi || !AddedTokenMatcher.startsWithWord(text, stop, hi)
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                start = max(AddedTokenMatcher.trailingSpaceStart(text, lo, start), startOffset)
            }
            if token.rstrip {
                stop = AddedTokenMatcher.leadingSpaceEnd(text, stop, hi)
            }
            if startOffset < start { push(-1, startOffset, start) }
            push(token.id, start, stop)
            startOffset = stop
        }
        if startOffset < hi { push(-1, startOffset, hi) }
    }

    // MARK: Scalar helpers over valid UTF-8

    private static func scalar(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> (Unicode.Scalar, Int)? {
        let b0 = UInt32(text[i])
        let v: UInt32
        let len: Int
        if b0 < 0x80 { v = b0; len = 1 }
        else if b0 < 0xE0 { v = (b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F); len = 2 }
        else if b0 < 0xF0 { v = (b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F); len = 3 }
        else {
            v = (b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12 | UInt32(text[i + 2] & 0x3F) << 6
                | UInt32(text[i + 3] & 0x3F)
            len = 4
        }
        guard let s = Unicode.Scalar(v) else { return nil }
        return (s, len)
    }

    /// Start of the scalar that ends at `end`.
    private static func previousStart(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ end: Int) -> Int {
        var i = end - 1
        while i > lo, text[i] & 0xC0 == 0x80 { i -= 1 }
        return i
    }

    static func endsWithWord(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ end: Int) -> Bool {
        guard end > lo, let (s, _) = scalar(text, at: previousStart(text, lo, end)) else { return false }
        return ScalarClass.isWordCharacter(s)
    }

    static func startsWithWord(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ hi: Int) -> Bool {
        guard start < hi, let (s, _) = scalar(text, at: start) else { return false }
        return ScalarClass.isWordCharacter(s)
    }

    /// Where the run of white space that ends at `end` begins (`\s*$`).
    static func trailingSpaceStart(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ end: Int) -> Int {
        var i = end
        while i > lo {
            let p = previousStart(text, lo, i)
            guard let (s, _) = scalar(text, at: p), s.properties.isWhitespace else { break }
            i = p
        }
        return i
    }

    /// Where the run of white space that starts at `start` ends (`^\s*`).
    static func leadingSpaceEnd(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ hi: Int) -> Int {
        var i = start
        while i < hi {
            guard let (s, len) = scalar(text, at: i), s.properties.isWhitespace else { break }
            i += len
        }
        return i
    }
}
