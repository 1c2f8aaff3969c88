/// Keeps a generated answer to a span of a given text, for extractive Q&A without invented
/// answers (`--grounded`).
///
/// A token is allowed when the answer's bytes with it are still a substring of the text that
/// starts at a word start (`WordStart`: not inside a word, so "ölgesi'nde" cannot come out of
/// "Bölgesi'nde"; any Chinese character may start one). The automaton reads the text's UTF-8
/// bytes with a marker byte before every word start, and the answer gets the same markers by
/// the same rule as its characters complete, so a character split across tokens is checked
/// byte by byte. White space before the answer is free, but a token of white space alone cannot
/// open it; the end-of-turn token is allowed once the answer has content; other special tokens
/// never are. Matching is exact (case, spacing, punctuation), as a span.
public struct GroundedSpan: Sendable {
    /// The text answers must come from.
    public let text: String
    let automaton: SuffixAutomaton

    public init(_ text: String) {
        self.text = text
        automaton = SuffixAutomaton(WordStart.marked(text))
    }

    /// Where an answer is: the automaton state after its complete characters, and the bytes of a
    /// character not complete yet.
    public struct State: Sendable, Equatable {
        public var node: Int32 = SuffixAutomaton.root
        /// Whether the answer has content (white space before it does not count).
        public var started = false
        var previous = WordStart.Kind.none
        var pending: UInt32 = 0
        var pendingCount: UInt8 = 0
        var pendingNeed: UInt8 = 0
        public init() {}

        /// Whether the answer may end here: it has content and no half character.
        public var canEnd: Bool { started && pendingCount == 0 }
    }

    /// The state after an answer grows by `bytes`, or nil when it would leave the text.
    public func advance(_ state: State, bytes: [UInt8]) -> State? {
        bytes.withUnsafeBufferPointer { advance(state, $0) }
    }

    func advance(_ state: State, _ bytes: UnsafeBufferPointer<UInt8>) -> State? {
        var s = state
        for b in bytes {
            if s.pendingCount == 0 {
                if !s.started && (b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D) { continue }
                switch b {
                case 0x00..<0x80: s.pendingNeed = 1
                case 0xC2..<0xE0: s.pendingNeed = 2
                case 0xE0..<0xF0: s.pendingNeed = 3
                case 0xF0..<0xF5: s.pendingNeed = 4
                default: return nil  // not the first byte of a character
                }
                s.started = true
            } else if b & 0xC0 != 0x80 {
                return nil
            }
            s.pending |= UInt32(b) << (8 * UInt32(s.pendingCount))
            s.pendingCount += 1
            if s.pendingCount == s.pendingNeed {
                guard let c = WordStart.scalar(s.pending, count: Int(s.pendingCount)) else { return nil }
                let kind = WordStart.kind(c)
                var node = s.node
                if WordStart.starts(kind, after: s.previous) {
                    guard let n = automaton.step(node, WordStart.marker) else { return nil }
                    node = n
                }
                for i in 0..<Int(s.pendingCount) {
                    guard let n = automaton.step(node, UInt8(truncatingIfNeeded: s.pending >> (8 * UInt32(i)))) else { return nil }
                    node = n
                }
                s.node = node
                s.previous = kind
                s.pending = 0
                s.pendingCount = 0
            }
        }
        guard s.started else { return nil }
        // Half a character: some completion of it must be in the text with the word-start marker the
        // completed character calls for (a lead byte found only inside words cannot open an answer).
        if s.pendingCount > 0 && !completable(s) { return nil }
        return s
    }

    /// Whether the half character of `s` can be completed: a path through its bytes and then any
    /// continuation bytes the text has, whose character's word-start rule matches the path taken.
    private func completable(_ s: State) -> Bool {
        let need = Int(s.pendingNeed), have = Int(s.pendingCount)
        func search(_ node: Int32, _ bytes: UInt32, _ count: Int, marked: Bool) -> Bool {
            if count == need {
                guard let c = WordStart.scalar(bytes, count: count) else { return false }
                return WordStart.starts(WordStart.kind(c), after: s.previous) == marked
            }
            for (b, n) in automaton.successors(node) where b & 0xC0 == 0x80 {
                if search(n, bytes | UInt32(b) << (8 * UInt32(count)), count + 1, marked: marked) { return true }
            }
            return false
        }
        for marked in [false, true] {
            guard var node = marked ? automaton.step(s.node, WordStart.marker) : s.node else { continue }
            var ok = true
            for i in 0..<have {
                guard let n = automaton.step(node, UInt8(truncatingIfNeeded: s.pending >> (8 * UInt32(i)))) else { ok = false; break }
                node = n
            }
            if ok && search(node, s.pending, have, marked: marked) { return true }
        }
        return false
    }

    /// Whether `id` may come next, and the state after it (`stop` for an end-of-turn token).
    public func allows(_ id: Int, state: State, tokenizer: Tokenizer, stops: Set<Int>) -> (allowed: Bool, next: State) {
        var scratch: [UInt8] = []
        return allows(id, state: state, tokenizer: tokenizer, stops: stops, scratch: &scratch)
    }

    /// `allows`, reading the token's bytes into `scratch` (reused across a vocabulary scan).
    func allows(_ id: Int, state: State, tokenizer: Tokenizer, stops: Set<Int>, scratch: inout [UInt8]) -> (allowed: Bool, next: State) {
        if stops.contains(id) { return (state.canEnd, state) }
        if tokenizer.isSpecial(id) { return (false, state) }
        scratch.removeAll(keepingCapacity: true)
        tokenizer.appendTokenBytes(id, to: &scratch)
        guard let n = scratch.withUnsafeBufferPointer({ advance(state, $0) }) else { return (false, state) }
        return (true, n)
    }

    /// The highest-scoring allowed token of `logits` (one row of `vocab`), looking at the best
    /// few first and widening only when none of them is allowed; nil when nothing is.
    public func best(_ logits: ArraySlice<Float>, state: State, tokenizer: Tokenizer, stops: Set<Int>) -> (id: Int, next: State)? {
        var scratch: [UInt8] = []
        var k = 64
        while true {
            for (i, _) in topK(logits, k) {
                let id = i - logits.startIndex
                let (ok, n) = allows(id, state: state, tokenizer: tokenizer, stops: stops, scratch: &scratch)
                if ok { return (id, n) }
            }
            if k >= logits.count { return nil }
            k = min(logits.count, k * 16)
        }
    }

    /// `logits` with every token that is not allowed set to -infinity (for sampling).
    public func mask(_ logits: inout [Float], state: State, tokenizer: Tokenizer, stops: Set<Int>) {
        // The whole vocabulary every step: one reused byte buffer rather than an array per token.
        var scratch: [UInt8] = []
        scratch.reserveCapacity(256)
        for id in logits.indices where !allows(id, state: state, tokenizer: tokenizer, stops: stops, scratch: &scratch).allowed {
            logits[id] = -.infinity
        }
    }
}
