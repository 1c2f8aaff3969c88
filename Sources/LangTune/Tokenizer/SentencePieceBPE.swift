/// SentencePiece-style BPE (GGUF `tokenizer.ggml.model` = `llama`: Gemma, Llama 2, Mistral):
/// spaces become `▁`, the text is cut into Unicode scalars, and adjacent pieces whose
/// concatenation is a vocabulary entry are merged, best entry first; a scalar the vocabulary
/// lacks falls back to its UTF-8 bytes as `<0xXX>` tokens (which never merge).
///
/// "Best" is a rank per merged entry (`tokenizers`' BPE with merges recovered from the
/// vocabulary, as transformers builds it from a GGUF): the order of the file for Gemma, the
/// score otherwise. Among pairs that make the same entry, the one with the longer left piece
/// ranks first (transformers' `generate_merges` order), then the leftmost.
///
/// A `tokenizer.json` BPE with `byte_fallback` (Gemma's form) instead ranks each pair of ids
/// by its line in `merges` (`pairMerges`), leftmost first among equal pairs, as `tokenizers` does.
///
/// The vocabulary is keyed by the bytes of its `▁`-spelled pieces, never by `String`
/// equality, so canonically equivalent spellings stay distinct.
struct SentencePieceBPE: Sendable {
    /// `▁`-spelled piece bytes → id.
    let vocab: ByteStringTable
    /// Merge rank of each id as a merged entry (lower merges first); `Int32.max`: never a merge result.
    /// Unused when `pairMerges` is set.
    let rank: [Int32]
    /// (left id, right id) → (rank, merged id), from a `tokenizer.json`'s merges; nil: ranks by merged entry.
    let pairMerges: MergeTable?
    /// The `<0xXX>` token of each byte, or -1 (then the unknown token stands for it).
    let byteIds: [Int32]
    let unknownId: Int32
    /// Where `▁` is put before the text between added tokens (Llama 2 and Mistral; never for Gemma).
    let spacePrefix: SpacePrefix
    /// `tokenizers`' Metaspace `split`: each `▁` starts a word and no merge crosses into it.
    let splitWords: Bool

    static let metaSpace: [UInt8] = [0xE2, 0x96, 0x81]

    struct Scratch {
        var text: [UInt8] = []
        var start: [Int32] = []
        var end: [Int32] = []
        var id: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        /// A byte-fallback or unknown piece: it never merges.
        var frozen: [Bool] = []
        var heap: [Candidate] = []
    }

    /// A possible merge of piece `left` with the piece after it, as ordered by `tokenizers`.
    struct Candidate {
        var rank: Int32
        /// Minus the left piece's length in scalars: longer left pieces first.
        var negLeftScalars: Int32
        var left: Int32
        /// The right piece's end when the candidate was made: a changed end means it is stale.
        var rightEnd: Int32
        var merged: Int32

        @inline(__always) static func before(_ a: Candidate, _ b: Candidate) -> Bool {
            if a.rank != b.rank { return a.rank < b.rank }
            if a.negLeftScalars != b.negLeftScalars { return a.negLeftScalars < b.negLeftScalars }
            return a.left < b.left
        }
    }

    /// Appends the ids of `p[0..<n]` (text between added tokens); `atStart`: it begins the input.
    func encode(_ p: UnsafePointer<UInt8>, _ n: Int, atStart: Bool, scratch s: inout Scratch, into out: inout [Int]) {
        guard n > 0 else { return }
        // Normalize: spaces are spelled `▁`.
        s.text.removeAll(keepingCapacity: true)
        for i in 0..<n {
            if p[i] == 0x20 { s.text.append(contentsOf: Self.metaSpace) } else { s.text.append(p[i]) }
        }
        if spacePrefix.applies(atStart: atStart, startsWithMetaSpace: s.text.starts(with: Self.metaSpace)) {
            s.text.insert(contentsOf: Self.metaSpace, at: 0)
        }
        s.start.removeAll(keepingCapacity: true)
        s.end.removeAll(keepingCapacity: true)
        s.id.removeAll(keepingCapacity: true)
        s.frozen.removeAll(keepingCapacity: true)
        s.text.withUnsafeBufferPointer { t in
            let base = t.baseAddress!
            var i = 0
            while i < t.count {
                let len = Self.scalarLength(t[i], available: t.count - i)
                let id = vocab.get(base + i, len)
                if id >= 0 {
                    s.start.append(Int32(i)); s.end.append(Int32(i + len)); s.id.append(id); s.frozen.append(false)
                } else {
                    var lastUnknown = false
                    for b in i..<(i + len) {
                        let fallback = byteIds[Int(t[b])]
                        // Without a byte token, consecutive unknown bytes fuse into one unknown token.
                        if fallback < 0 && lastUnknown { s.end[s.end.count - 1] = Int32(b + 1); continue }
                        s.start.append(Int32(b)); s.end.append(Int32(b + 1))
                        s.id.append(fallback >= 0 ? fallback : unknownId); s.frozen.append(true)
                        lastUnknown = fallback < 0
                    }
                }
                i += len
            }
            merge(base, &s)
        }
        var k: Int32 = 0
        while k >= 0 && Int(k) < s.id.count {
            if s.id[Int(k)] >= 0 { out.append(Int(s.id[Int(k)])) }
            k = s.next[Int(k)]
        }
    }

    private func merge(_ text: UnsafePointer<UInt8>, _ s: inout Scratch) {
        let count = s.id.count
        s.next = (0..<count).map { Int32($0 + 1 < count ? $0 + 1 : -1) }
        s.prev = (0..<count).map { Int32($0 - 1) }
        s.heap.removeAll(keepingCapacity: true)
        guard count >= 2 else { return }
        for k in 0..<(count - 1) { push(Int32(k), text, &s) }
        while let c = pop(&s) {
            let l = Int(c.left)
            // Stale: the left piece was merged away, or its right neighbour changed.
            guard s.id[l] >= 0, s.next[l] >= 0 else { continue }
            let r = Int(s.next[l])
            guard s.end[r] == c.rightEnd, s.end[l] == s.start[r] else { continue }
            s.id[l] = c.merged
            s.end[l] = s.end[r]
            s.id[r] = -1
            s.next[l] = s.next[r]
            if s.next[r] >= 0 { s.prev[Int(s.next[r])] = Int32(l) }
            if s.prev[l] >= 0 { push(s.prev[l], text, &s) }
            if s.next[l] >= 0 { push(Int32(l), text, &s) }
        }
    }

    /// Adds the candidate merge of piece `left` with its right neighbour, if the pair is a vocabulary entry.
    @inline(__always)
    private func push(_ left: Int32, _ text: UnsafePointer<UInt8>, _ s: inout Scratch) {
        let l = Int(left), r = Int(s.next[l])
        guard r >= 0 else { return }
        // A word starts at each `▁`: merging into it would join two words.
        if splitWords && startsWithMetaSpace(text, Int(s.start[r]), Int(s.end[r])) { return }
        if let pairMerges {
            // As `tokenizers`: any two ids merge when their pair is listed, byte-fallback ids included.
            let v = pairMerges.get(s.id[l], s.id[r])
            guard v != UInt64.max else { return }
            append(Candidate(rank: Int32(truncatingIfNeeded: v >> 32), negLeftScalars: 0, left: left,
                             rightEnd: s.end[r], merged: Int32(truncatingIfNeeded: v)), &s)
            return
        }
        guard !s.frozen[l], !s.frozen[r] else { return }
        let a = Int(s.start[l]), e = Int(s.end[r])
        let merged = vocab.get(text + a, e - a)
        guard merged >= 0, rank[Int(merged)] != Int32.max else { return }
        var scalars: Int32 = 0
        for i in a..<Int(s.end[l]) where text[i] & 0xC0 != 0x80 { scalars += 1 }
        append(Candidate(rank: rank[Int(merged)], negLeftScalars: -scalars, left: left, rightEnd: Int32(e), merged: merged), &s)
    }

    @inline(__always)
    private func append(_ c: Candidate, _ s: inout Scratch) {
        s.heap.append(c)
        var i = s.heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Candidate.before(s.heap[i], s.heap[parent]) else { break }
            s.heap.swapAt(i, parent)
            i = parent
        }
    }

    private func pop(_ s: inout Scratch) -> Candidate? {
        guard let top = s.heap.first else { return nil }
        let last = s.heap.removeLast()
        if s.heap.isEmpty { return top }
        s.heap[0] = last
        var i = 0
        let n = s.heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < n, Candidate.before(s.heap[l], s.heap[best]) { best = l }
            if r < n, Candidate.before(s.heap[r], s.heap[best]) { best = r }
            if best == i { break }
            s.heap.swapAt(i, best)
            i = best
        }
        return top
    }

    @inline(__always)
    private func startsWithMetaSpace(_ text: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Bool {
        end - i >= 3 && text[i] == 0xE2 && text[i + 1] == 0x96 && text[i + 2] == 0x81
    }

    /// Bytes of the UTF-8 sequence starting with `lead` (1 for a stray continuation byte).
    @inline(__always)
    static func scalarLength(_ lead: UInt8, available: Int) -> Int {
        let n = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        return min(n, available)
    }
}

/// Where a SentencePiece-style tokenizer puts `▁` before a segment of text (the text between
/// added tokens), as the `tokenizers` component that does it in each file form.
enum SpacePrefix: Sendable, Equatable {
    /// Gemma; Metaspace `prepend_scheme: never`; GGUF `add_space_prefix` false.
    case never
    /// Metaspace `prepend_scheme: first` (transformers 4.4x and 5 for Llama 2 and Mistral; GGUF
    /// `add_space_prefix`, as transformers converts it): only the segment that starts the input,
    /// and not when it already starts with `▁` (a space).
    case first
    /// Metaspace `prepend_scheme: always` (or the older `add_prefix_space: true`): every segment
    /// not already starting with `▁`.
    case always
    /// The `Prepend "▁"` normalizer (Llama 2 and Mistral as first published on the Hub): every
    /// segment, even one that starts with a space.
    case everySegment

    func applies(atStart: Bool, startsWithMetaSpace: Bool) -> Bool {
        switch self {
        case .never: return false
        case .first: return atStart && !startsWithMetaSpace
        case .always: return !startsWithMetaSpace
        case .everySegment: return true
        }
    }
}
