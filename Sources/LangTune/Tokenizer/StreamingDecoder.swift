/// Turns generated ids into text one id at a time. Each `feed` returns only text whose
/// UTF-8 is complete; the bytes of a character split across tokens are held back until
/// the rest arrives. The concatenated output equals `Tokenizer.decode` of all the ids.
public struct StreamingDecoder: Sendable {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var pending: [UInt8] = []
    /// No byte has been produced yet (the tokenizer may drop a leading space).
    private var atStart = true

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id; returns the text that became complete (possibly empty).
    public mutating func feed(_ id: Int) -> String {
        if skipSpecialTokens && tokenizer.isSpecial(id) { return "" }
        tokenizer.appendTokenBytes(id, to: &pending)
        if atStart && !pending.isEmpty {
            atStart = false
            if tokenizer.core.stripLeadingSpace && pending[0] == 0x20 { pending.removeFirst() }
        }
        return drain(holdIncomplete: true)
    }

    /// Adds several ids; returns the text that became complete.
    public mutating func feed<S: Sequence>(_ ids: S) -> String where S.Element == Int {
        var text = ""
        for id in ids { text += feed(id) }
        return text
    }

    /// The held-back bytes, replaced by U+FFFD as `decode` would; resets the decoder.
    public mutating func finish() -> String {
        atStart = true
        return drain(holdIncomplete: false)
    }

    /// True when bytes of an incomplete character are held back.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    private mutating func drain(holdIncomplete: Bool) -> String {
        guard !pending.isEmpty else { return "" }
        var text = ""
        let used = pending.withUnsafeBufferPointer { UTF8Repair.decode($0, holdIncomplete: holdIncomplete, into: &text) }
        pending.removeFirst(used)
        return text
    }
}
