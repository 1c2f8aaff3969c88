import Foundation

/// Overlapping windows of a passage chosen without looking at the answer, for asking a
/// question about a context too long for the model.
///
/// A deployed system has no answer to centre a cut on, so evaluation must not have one
/// either: training's `ContextWindows` grow around the answer and would tell the model
/// where it is. Here the passage is cut into sentences (`ContextWindows.sentenceBounds`,
/// which looks only at punctuation), a sentence longer than the budget into pieces that
/// fit, and a window is the longest run of pieces from its first one that fits the budget.
/// The next window starts at the first piece past half of the previous one (a stride of
/// about half a window, like the document stride of extractive QA pipelines); the last
/// window ends at the passage's end.
struct BlindContextWindows {
    /// The passage's pieces (sentences, or parts of long ones) with their token counts.
    let pieces: [String]
    let tokens: [Int]

    /// - Parameters:
    ///   - budget: tokens a window's text may take.
    ///   - count: tokens of a piece of text on its own (sums approximate a window's count;
    ///     `windows(fits:)` checks the real prompt).
    init(_ context: String, budget: Int, count: (String) -> Int) {
        let scalars = Array(context.unicodeScalars)
        let starts = ContextWindows.sentenceBounds(scalars).starts
        var pieces: [String] = [], tokens: [Int] = []
        for (k, s) in starts.enumerated() {
            let e = k + 1 < starts.count ? starts[k + 1] : scalars.count
            guard s < e else { continue }
            for part in Self.split(scalars[s..<e], budget: budget, count: count) {
                pieces.append(part.text)
                tokens.append(part.tokens)
            }
        }
        self.pieces = pieces
        self.tokens = tokens
    }

    /// The windows' texts. `fits(text)` says whether the real prompt with `text` as its
    /// context fits; a window that does not is shortened a piece at a time (token counts of
    /// pieces tokenized apart differ a little from the count of their concatenation).
    func windows(fits: (String) throws -> Bool, budget: Int) rethrows -> [String] {
        var out: [String] = []
        var i = 0
        while i < pieces.count {
            var j = i, sum = 0
            while j < pieces.count && sum + tokens[j] <= budget { sum += tokens[j]; j += 1 }
            j = max(j, i + 1)
            while j > i + 1, try !fits(text(i..<j)) { j -= 1 }
            out.append(text(i..<j))
            if j == pieces.count { break }
            // The next window starts past half of this one's tokens, and always moves on.
            let used = tokens[i..<j].reduce(0, +)
            var k = i + 1, covered = tokens[i]
            while k < j && covered * 2 < used { covered += tokens[k]; k += 1 }
            i = k
        }
        return out
    }

    func text(_ r: Range<Int>) -> String {
        pieces[r].joined().trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `scalars` whole when they fit `budget` tokens, else cut in pieces that do, at white
    /// space where there is some in the second half of a piece.
    static func split(_ scalars: ArraySlice<Unicode.Scalar>, budget: Int, count: (String) -> Int)
        -> [(text: String, tokens: Int)] {
        func string(_ s: ArraySlice<Unicode.Scalar>) -> String {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s)
            return String(v)
        }
        let whole = string(scalars), n = count(whole)
        if n <= budget || scalars.count < 2 { return [(whole, n)] }
        // Cut near the point where the first part holds about `budget` tokens.
        let lo = scalars.startIndex
        var cut = lo + max(1, min(scalars.count - 1, scalars.count * budget / n * 9 / 10))
        if let space = scalars[(lo + (cut - lo) / 2)..<cut].lastIndex(where: { $0.properties.isWhitespace }), space > lo {
            cut = space + 1
        }
        return split(scalars[lo..<cut], budget: budget, count: count) + split(scalars[cut...], budget: budget, count: count)
    }
}
