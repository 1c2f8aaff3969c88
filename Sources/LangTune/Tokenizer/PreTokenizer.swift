/// The split patterns this tokenizer reproduces. Each is matched by hand over
/// Unicode scalars with the leftmost-first alternation and backtracking that
/// Oniguruma (Hugging Face `tokenizers`) applies to the regex.
enum SplitPattern: Sendable, Equatable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// As `llama3` with `\p{N}` in place of `\p{N}{1,3}`.
    case qwen2

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern a tokenizer.json spells out, compared byte for byte.
    init?(source: String) {
        let bytes = Array(source.utf8)
        if bytes == Array(SplitPattern.gpt2Source.utf8) { self = .gpt2 }
        else if bytes == Array(SplitPattern.llama3Source.utf8) { self = .llama3 }
        else if bytes == Array(SplitPattern.qwen2Source.utf8) { self = .qwen2 }
        else { return nil }
    }
}

/// One splitting step of a pre-tokenizer pipeline; each step splits every piece
/// the previous step produced (Hugging Face `PreTokenizedString.split`).
enum PreTokenizerStep: Sendable, Equatable {
    /// `Digits(individual_digits: true)`: every `\p{N}` scalar becomes its own piece.
    case individualDigits
    /// `Split(pattern, behavior: Isolated)` or `ByteLevel(use_regex: true)`: matches and the gaps between them are pieces.
    case pattern(SplitPattern)
}

/// Splits text (already free of added tokens) into the pieces that BPE encodes one by one.
struct PreTokenizer: Sendable {
    var steps: [PreTokenizerStep]
    /// `ByteLevel(add_prefix_space: true)`: a piece not starting with a space gets one.
    var addPrefixSpace: Bool

    /// Working arrays reused across the pieces of one `encode` call. `scalars`, `classes`
    /// and `offsets` are sized ahead and filled through pointers; only `count` entries are live.
    struct Scratch {
        var scalars: [UInt32] = []
        var classes: [UInt8] = []
        /// Byte offset of each scalar, plus the end offset.
        var offsets: [Int] = []
        var count = 0
        var ends: [Int] = []
        var nextEnds: [Int] = []

        mutating func reserve(_ n: Int) {
            guard scalars.count < n else { return }
            let size = max(n, 2 * scalars.count, 64)
            scalars = [UInt32](repeating: 0, count: size)
            classes = [UInt8](repeating: 0, count: size)
            offsets = [Int](repeating: 0, count: size + 1)
        }
    }

    /// Splits the valid UTF-8 `text[range]`; returns piece end offsets (bytes, relative to `text`) in `scratch.ends`.
    func split(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, scratch: inout Scratch) {
        scratch.reserve(range.count)
        scratch.ends.removeAll(keepingCapacity: true)
        let n = scratch.scalars.withUnsafeMutableBufferPointer { sc in
            scratch.classes.withUnsafeMutableBufferPointer { cl in
                scratch.offsets.withUnsafeMutableBufferPointer { off in
                    PreTokenizer.decode(text, range, sc, cl, off)
                }
            }
        }
        scratch.count = n
        guard n > 0 else { return }
        scratch.ends.append(n)
        scratch.scalars.withUnsafeBufferPointer { sc in
            scratch.classes.withUnsafeBufferPointer { cl in
                for step in steps {
                    scratch.nextEnds.removeAll(keepingCapacity: true)
                    var start = 0
                    for end in scratch.ends {
                        switch step {
                        case .individualDigits:
                            PreTokenizer.splitDigits(cl, start, end, into: &scratch.nextEnds)
                        case .pattern(let pattern):
                            var i = start
                            while i < end {
                                let j: Int
                                switch pattern {
                                case .gpt2: j = PreTokenizer.nextGPT2(sc, cl, i, end)
                                case .llama3: j = PreTokenizer.nextLlama3(sc, cl, i, end, maxDigits: 3)
                                case .qwen2: j = PreTokenizer.nextLlama3(sc, cl, i, end, maxDigits: 1)
                                }
                                scratch.nextEnds.append(j)
                                i = j
                            }
                        }
                        start = end
                    }
                    swap(&scratch.ends, &scratch.nextEnds)
                }
            }
        }
        // Scalar indexes to byte offsets.
        scratch.offsets.withUnsafeBufferPointer { off in
            scratch.ends.withUnsafeMutableBufferPointer { ends in
                for k in ends.indices { ends[k] = off[ends[k]] }
            }
        }
    }

    /// Decodes scalars (with their classes and byte offsets); returns how many.
    private static func decode(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                               _ sc: UnsafeMutableBufferPointer<UInt32>, _ cl: UnsafeMutableBufferPointer<UInt8>,
                               _ off: UnsafeMutableBufferPointer<Int>) -> Int {
        ScalarClass.bmp.withUnsafeBufferPointer { bmp in
            var i = range.lowerBound
            var n = 0
            while i < range.upperBound {
                let b0 = UInt32(text[i])
                off[n] = i
                if b0 < 0x80 {
                    sc[n] = b0
                    cl[n] = bmp[Int(b0)]
                    i += 1
                } else {
                    let v: UInt32
                    if b0 < 0xE0 {
                        v = (b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F)
                        i += 2
                    } else if b0 < 0xF0 {
                        v = (b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F)
                        i += 3
                    } else {
                        v = (b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12 | UInt32(text[i + 2] & 0x3F) << 6
                            | UInt32(text[i + 3] & 0x3F)
                        i += 4
                    }
                    sc[n] = v
                    cl[n] = v < 0x10000 ? bmp[Int(v)] : ScalarClass.compute(v)
                }
                n += 1
            }
            off[n] = range.upperBound
            return n
        }
    }

    static func splitDigits(_ cl: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into ends: inout [Int]) {
        var pendingStart = start
        for i in start..<end where cl[i] & ScalarClass.number != 0 {
            if pendingStart < i { ends.append(i) }
            ends.append(i + 1)
            pendingStart = i + 1
        }
        if pendingStart < end { ends.append(end) }
    }

    @inline(__always)
    private static func run(_ cl: UnsafeBufferPointer<UInt8>, from: Int, _ end: Int, where mask: UInt8) -> Int {
        var j = from
        while j < end, cl[j] & mask != 0 { j += 1 }
        return j
    }

    @inline(__always)
    private static func runOther(_ cl: UnsafeBufferPointer<UInt8>, from: Int, _ end: Int) -> Int {
        var j = from
        let mask = ScalarClass.letter | ScalarClass.number | ScalarClass.space
        while j < end, cl[j] & mask == 0 { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` from `i`, where `cl[i]` is white space: a run followed by a
    /// non-space gives back its last scalar (unless that would leave nothing).
    @inline(__always)
    private static func whitespace(_ cl: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let j = run(cl, from: i + 1, end, where: ScalarClass.space)
        if j == end || j - i < 2 { return j }
        return j - 1
    }

    /// End (scalar index) of the GPT-2 pattern's match at `i`.
    static func nextGPT2(_ sc: UnsafeBufferPointer<UInt32>, _ cl: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let c = sc[i]
        if c == 0x27, i + 1 < end {
            let d = sc[i + 1]
            if d == 0x73 || d == 0x74 || d == 0x6D || d == 0x64 { return i + 2 }  // s t m d
            if i + 2 < end {
                let f = sc[i + 2]
                if (d == 0x72 && f == 0x65) || (d == 0x76 && f == 0x65) || (d == 0x6C && f == 0x6C) { return i + 3 }  // re ve ll
            }
        }
        // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: the optional space only ever applies to U+0020.
        let k = (c == 0x20 && i + 1 < end) ? i + 1 : i
        let ck = cl[k]
        if ck & ScalarClass.space == 0 {
            if ck & ScalarClass.letter != 0 { return run(cl, from: k + 1, end, where: ScalarClass.letter) }
            if ck & ScalarClass.number != 0 { return run(cl, from: k + 1, end, where: ScalarClass.number) }
            return runOther(cl, from: k + 1, end)
        }
        return whitespace(cl, i, end)
    }

    @inline(__always)
    private static func foldASCII(_ v: UInt32) -> UInt32 {
        if v >= 0x41 && v <= 0x5A { return v + 0x20 }
        if v == 0x17F { return 0x73 }  // LATIN SMALL LETTER LONG S case-folds to "s"
        return v
    }

    /// End (scalar index) of the Llama 3 (maxDigits 3) or Qwen2 (maxDigits 1) pattern's match at `i`.
    static func nextLlama3(_ sc: UnsafeBufferPointer<UInt32>, _ cl: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int,
                           maxDigits: Int) -> Int {
        let c = sc[i]
        let cc = cl[i]
        if c == 0x27, i + 1 < end {
            let d = foldASCII(sc[i + 1])
            if d == 0x73 || d == 0x74 || d == 0x6D || d == 0x64 { return i + 2 }
            if i + 2 < end {
                let f = foldASCII(sc[i + 2])
                if (d == 0x72 && f == 0x65) || (d == 0x76 && f == 0x65) || (d == 0x6C && f == 0x6C) { return i + 3 }
            }
        }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if cc & (ScalarClass.letter | ScalarClass.number | ScalarClass.newline) == 0, i + 1 < end,
           cl[i + 1] & ScalarClass.letter != 0 {
            return run(cl, from: i + 2, end, where: ScalarClass.letter)
        }
        if cc & ScalarClass.letter != 0 { return run(cl, from: i + 1, end, where: ScalarClass.letter) }
        // `\p{N}{1,maxDigits}`
        if cc & ScalarClass.number != 0 {
            var j = i + 1
            while j < end, j - i < maxDigits, cl[j] & ScalarClass.number != 0 { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let k = (c == 0x20 && i + 1 < end) ? i + 1 : i
        if cl[k] & (ScalarClass.letter | ScalarClass.number | ScalarClass.space) == 0 {
            let j = runOther(cl, from: k + 1, end)
            return run(cl, from: j, end, where: ScalarClass.newline)
        }
        // `\s*[\r\n]+`: the greedy run backtracks to just past its last \r or \n.
        var j = i
        var lastNewline = -1
        while j < end, cl[j] & ScalarClass.space != 0 {
            if cl[j] & ScalarClass.newline != 0 { lastNewline = j }
            j += 1
        }
        if lastNewline >= 0 { return lastNewline + 1 }
        if j == i { return i + 1 }  // unreachable: every scalar falls in some alternative
        if j == end || j - i < 2 { return j }
        return j - 1
    }
}
