import Foundation

/// Nested windows of a passage around an answer span, smallest first, for cutting a
/// context that is too long for the model while keeping the whole answer.
///
/// Offsets are in Unicode scalars (as SQuAD's `answer_start`). The sequence starts
/// with the answer alone, grows a character at a time (snapped to word boundaries in
/// languages written with spaces) up to the sentence(s) holding the answer, then adds
/// whole sentences, alternately before and after, up to the whole passage. Each window
/// contains the previous one, so token counts grow (nearly) monotonically and the
/// largest window that fits can be found by bisection.
struct ContextWindows {
    let scalars: [Unicode.Scalar]
    /// The answer: `answer.lowerBound ..< answer.upperBound` in `scalars`.
    let answer: Range<Int>
    let candidates: [Range<Int>]

    init(scalars: [Unicode.Scalar], answer: Range<Int>, wordsSeparatedBySpaces: Bool) {
        self.scalars = scalars
        self.answer = answer
        let (starts, ends) = Self.sentenceBounds(scalars)
        let a = answer.lowerBound, b = answer.upperBound
        // The sentence(s) that hold the answer.
        let s0 = starts.last(where: { $0 <= a }) ?? 0
        let e0 = ends.first(where: { $0 >= b }) ?? scalars.count
        var out: [Range<Int>] = []
        func add(_ r: Range<Int>) { if out.last != r { out.append(r) } }
        let steps = max(a - s0, e0 - b)
        for r in 0...steps {
            var s = max(s0, a - r), e = min(e0, b + r)
            if wordsSeparatedBySpaces {
                // Never start or end inside a word: move inward to the nearest space.
                while s > s0 && s < a && !Self.isSpace(scalars[s - 1]) { s += 1 }
                while e < e0 && e > b && !Self.isSpace(scalars[e]) { e -= 1 }
            }
            add(Self.trimmed(s..<e, scalars, keeping: answer))
        }
        // Whole sentences, alternately before and after.
        var left = starts.filter { $0 < s0 }.reversed().makeIterator()
        var right = ends.filter { $0 > e0 }.makeIterator()
        var s = s0, e = e0, takeLeft = true, leftDone = false, rightDone = false
        while !(leftDone && rightDone) {
            if takeLeft && !leftDone {
                if let n = left.next() { s = n; add(Self.trimmed(s..<e, scalars, keeping: answer)) } else { leftDone = true }
            } else if !rightDone {
                if let n = right.next() { e = n; add(Self.trimmed(s..<e, scalars, keeping: answer)) } else { rightDone = true }
            }
            takeLeft.toggle()
        }
        add(Self.trimmed(0..<scalars.count, scalars, keeping: answer))
        candidates = out
    }

    func text(_ r: Range<Int>) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars[r])
        return String(v)
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// `r` without surrounding white space (never cutting into `answer`).
    static func trimmed(_ r: Range<Int>, _ scalars: [Unicode.Scalar], keeping answer: Range<Int>) -> Range<Int> {
        var s = r.lowerBound, e = r.upperBound
        while s < answer.lowerBound && isSpace(scalars[s]) { s += 1 }
        while e > answer.upperBound && isSpace(scalars[e - 1]) { e -= 1 }
        return s..<e
    }

    /// Sentence starts (always including 0) and ends (always including the count).
    ///
    /// A sentence ends after `.`, `!`, `?` or `…` followed by white space and a word that
    /// does not start in lower case, unless the word before a `.` is a number or a Roman
    /// numeral (Turkish ordinals: "16. yüzyıl", "II. Mehmed"); after `。`, `！`, `？`
    /// (with any closing quotes); and at line breaks.
    static func sentenceBounds(_ t: [Unicode.Scalar]) -> (starts: [Int], ends: [Int]) {
        let n = t.count
        var starts = [0], ends: [Int] = []
        var i = 0
        while i < n {
            let c = t[i]
            var end: Int? = nil
            switch c {
            case "\n":
                end = i
            case "。", "！", "？":
                var j = i + 1
                while j < n, closers.contains(t[j]) { j += 1 }
                end = j
            case ".", "!", "?", "…":
                var j = i + 1
                while j < n, closers.contains(t[j]) || ((t[j] == "." || t[j] == "!" || t[j] == "?") && c != "…") { j += 1 }
                guard j == n || isSpace(t[j]) else { break }
                var k = j
                while k < n, isSpace(t[k]) { k += 1 }
                if k < n, t[k].properties.isLowercase { break }
                if c == ".", j == i + 1, isOrdinalOrAbbreviation(t, before: i) { break }
                end = j
            default:
                break
            }
            if let e = end {
                if e > 0 && ends.last != e { ends.append(e) }
                var k = max(e, i + 1)
                while k < n, isSpace(t[k]) { k += 1 }
                if k < n && starts.last != k { starts.append(k) }
                i = max(k, i + 1)
            } else {
                i += 1
            }
        }
        if ends.last != n { ends.append(n) }
        return (starts, ends)
    }

    static let closers: Set<Unicode.Scalar> = ["\"", "'", ")", "]", "”", "’", "」", "』", "）", "》"]

    /// Whether the word ending at `i` (exclusive) is a number, a Roman numeral or a single letter.
    static func isOrdinalOrAbbreviation(_ t: [Unicode.Scalar], before i: Int) -> Bool {
        var k = i
        while k > 0, !isSpace(t[k - 1]), t[k - 1].properties.isAlphabetic || ("0"..."9").contains(t[k - 1]) { k -= 1 }
        let word = t[k..<i]
        guard !word.isEmpty else { return false }
        if word.allSatisfy({ ("0"..."9").contains($0) }) { return true }
        if word.allSatisfy({ "IVXLCDM".unicodeScalars.contains($0) }) { return true }
        return word.count == 1
    }
}
