/// Keeps a generated answer to a span of a given text, for extractive Q&A without invented
/// answers (`--grounded`).
///
/// A token is allowed when the answer's bytes with it are still a substring of the text
/// (a suffix automaton over the text's UTF-8 bytes, so a character split across tokens is
/// checked byte by byte). White space before the answer is free, but a token of white space
/// alone cannot open it; the end-of-turn token is allowed once the answer has content;
/// other special tokens never are. Matching is exact (case, spacing, punctuation), as a span.
public struct GroundedSpan: Sendable {
    /// The text answers must come from.
    public let text: String
    let automaton: SuffixAutomaton

    public init(_ text: String) {
        self.text = text
        automaton = SuffixAutomaton(Array(text.utf8))
    }

    /// Where an answer is: the automaton state, and whether it has content yet.
    public struct State: Sendable, Equatable {
        public var node: Int32 = SuffixAutomaton.root
        public var started = false
        public init() {}
    }

    /// The state after an answer grows by `bytes`, or nil when it would leave the text.
    public func advance(_ state: State, bytes: [UInt8]) -> State? {
        bytes.withUnsafeBufferPointer { advance(state, $0) }
    }

    func advance(_ state: State, _ bytes: UnsafeBufferPointer<UInt8>) -> State? {
        var s = state
        for b in bytes {
            if !s.started && (b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D) { continue }
            guard let n = automaton.step(s.node, b) else { return nil }
            s.node = n
            s.started = true
        }
        return s.started ? s : nil
    }

    /// Whether `id` may come next, and the state after it (`stop` for an end-of-turn token).
    public func allows(_ id: Int, state: State, tokenizer: Tokenizer, stops: Set<Int>) -> (allowed: Bool, next: State) {
        var scratch: [UInt8] = []
        return allows(id, state: state, tokenizer: tokenizer, stops: stops, scratch: &scratch)
    }

    /// `allows`, reading the token's bytes into `scratch` (reused across a vocabulary scan).
    func allows(_ id: Int, state: State, tokenizer: Tokenizer, stops: Set<Int>, scratch: inout [UInt8]) -> (allowed: Bool, next: State) {
        if stops.contains(id) { return (state.started, state) }
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
