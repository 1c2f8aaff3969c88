import Foundation

/// Per-question answer metrics on a 0-100 scale, the best over the reference answers.
///
/// English and Turkish follow SQuAD v1.1's `evaluate-v1.1.py` (bag-of-words F1 over normalized
/// tokens); Chinese follows CMRC 2018's `cmrc2018_evaluate.py` (F1 from the longest common
/// *substring* of the mixed segmentation). ROUGE-L is rouge-score's LCS F-measure over the same
/// tokens. `Tests/Reference/eval_metrics.py` computes all of them with the reference code.
public enum QAMetrics {
    /// 100 if the prediction equals one of the references after normalization, else 0.
    public static func exactMatch(_ prediction: String, _ references: [String], language: String) -> Double {
        let p = AnswerText.exactMatchForm(prediction, language: language)
        return references.contains { sameScalars(AnswerText.exactMatchForm($0, language: language), p) } ? 100 : 0
    }

    /// Token F1 (SQuAD) or longest-common-substring F1 (CMRC, Chinese), best reference.
    public static func f1(_ prediction: String, _ references: [String], language: String) -> Double {
        let p = AnswerText.tokens(prediction, language: language)
        var best = 0.0
        for r in references {
            let t = AnswerText.tokens(r, language: language)
            let f = language == "zh" ? substringF1(p, t) : bagF1(p, t)
            best = max(best, f)
        }
        return 100 * best
    }

    /// ROUGE-L F-measure over `AnswerText.tokens`, best reference (rouge-score's `score_multi`).
    public static func rougeL(_ prediction: String, _ references: [String], language: String) -> Double {
        let p = AnswerText.tokens(prediction, language: language)
        var best = 0.0
        for r in references {
            let t = AnswerText.tokens(r, language: language)
            guard !p.isEmpty, !t.isEmpty else { continue }
            let l = Double(lcsSubsequence(t, p))
            let precision = l / Double(p.count), recall = l / Double(t.count)
            if precision + recall > 0 { best = max(best, 2 * precision * recall / (precision + recall)) }
        }
        return 100 * best
    }

    /// SQuAD's F1: multiset overlap of tokens.
    static func bagF1(_ p: [String], _ t: [String]) -> Double {
        var counts: [ScalarKey: Int] = [:]
        for w in t { counts[ScalarKey(w), default: 0] += 1 }
        var same = 0
        for w in p {
            let k = ScalarKey(w)
            if let c = counts[k], c > 0 { counts[k] = c - 1; same += 1 }
        }
        guard same > 0 else { return 0 }
        let precision = Double(same) / Double(p.count), recall = Double(same) / Double(t.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// CMRC 2018's F1: the longest common contiguous run of segments.
    static func substringF1(_ p: [String], _ t: [String]) -> Double {
        let l = lcsSubstring(t, p)
        guard l > 0 else { return 0 }
        let precision = Double(l) / Double(p.count), recall = Double(l) / Double(t.count)
        return 2 * precision * recall / (precision + recall)
    }

    static func lcsSubstring(_ a: [String], _ b: [String]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        let bk = b.map(ScalarKey.init)
        var prev = [Int](repeating: 0, count: b.count + 1), cur = prev
        var best = 0
        for x in a {
            let xk = ScalarKey(x)
            for j in 0..<b.count {
                cur[j + 1] = xk == bk[j] ? prev[j] + 1 : 0
                best = max(best, cur[j + 1])
            }
            swap(&prev, &cur)
        }
        return best
    }

    static func lcsSubsequence(_ a: [String], _ b: [String]) -> Int {
        let bk = b.map(ScalarKey.init)
        var prev = [Int](repeating: 0, count: b.count + 1), cur = prev
        for x in a {
            let xk = ScalarKey(x)
            for j in 0..<b.count {
                cur[j + 1] = xk == bk[j] ? prev[j] + 1 : max(prev[j + 1], cur[j])
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}

/// sacrebleu's chrF (character 6-grams, β = 2, whitespace removed, no word n-grams), corpus-level:
/// per segment the statistics of the best-scoring reference are kept and summed over the corpus.
public struct CHRF: Sendable {
    public static let order = 6
    public static let beta = 2.0
    /// [hyp, ref, match] per order, summed over segments.
    public private(set) var stats = [Int](repeating: 0, count: 3 * CHRF.order)

    public init() {}

    /// Adds one segment.
    public mutating func add(_ hypothesis: String, references: [String]) {
        let h = Self.ngrams(hypothesis)
        var best: [Int] = []
        var bestF = -1.0
        for r in references {
            let rn = Self.ngrams(r)
            var s: [Int] = []
            for n in 0..<Self.order {
                var match = 0, hyp = 0
                for (g, c) in h[n] {
                    hyp += c
                    if let rc = rn[n][g] { match += min(c, rc) }
                }
                let refTotal = rn[n].values.reduce(0, +)
                s += [rn[n].isEmpty ? 0 : hyp, refTotal, match]
            }
            let f = Self.score(s)
            if f > bestF { bestF = f; best = s }
        }
        if !best.isEmpty { for i in stats.indices { stats[i] += best[i] } }
    }

    /// The corpus chrF, 0-100.
    public var score: Double { Self.score(stats) }

    static func ngrams(_ s: String) -> [[ScalarKey: Int]] {
        let chars = s.unicodeScalars.filter { !PyText.isSpace($0) }.map { $0 }
        var out = [[ScalarKey: Int]](repeating: [:], count: order)
        for n in 1...order where chars.count >= n {
            for i in 0...(chars.count - n) { out[n - 1][ScalarKey(PyText.string(chars[i..<(i + n)])), default: 0] += 1 }
        }
        return out
    }

    /// sacrebleu's `_compute_f_score` without epsilon smoothing: precision and recall averaged
    /// over the orders where both sides have n-grams, then F-β.
    static func score(_ s: [Int]) -> Double {
        let factor = beta * beta
        var avgP = 0.0, avgR = 0.0, effective = 0
        for i in 0..<order {
            let hyp = s[3 * i], ref = s[3 * i + 1], match = s[3 * i + 2]
            if hyp > 0 && ref > 0 {
                avgP += Double(match) / Double(hyp)
                avgR += Double(match) / Double(ref)
                effective += 1
            }
        }
        if effective == 0 { return 0 }
        avgP /= Double(effective)
        avgR /= Double(effective)
        guard avgP + avgR > 0 else { return 0 }
        return 100 * (1 + factor) * avgP * avgR / (factor * avgP + avgR)
    }
}

/// sacrebleu's BLEU (4-grams, `exp` smoothing, closest reference length, tokenizer `13a`, or `zh`
/// for Chinese segments), corpus-level from summed statistics.
public struct BLEU: Sendable {
    public static let maxOrder = 4
    public private(set) var hypLength = 0
    public private(set) var refLength = 0
    public private(set) var correct = [Int](repeating: 0, count: BLEU.maxOrder)
    public private(set) var total = [Int](repeating: 0, count: BLEU.maxOrder)

    public init() {}

    /// Adds one segment, tokenized for `language` (`zh` → sacrebleu's `zh` tokenizer, else `13a`).
    public mutating func add(_ hypothesis: String, references: [String], language: String) {
        let h = BLEUTokenizer.tokens(hypothesis, language: language)
        var refMax: [[ScalarKey]: Int] = [:]
        var refLens: [Int] = []
        for r in references {
            let t = BLEUTokenizer.tokens(r, language: language)
            refLens.append(t.count)
            for (g, c) in Self.ngrams(t) { refMax[g] = max(refMax[g] ?? 0, c) }
        }
        var closest = -1, closestDiff = -1
        for l in refLens {
            let d = abs(h.count - l)
            if closestDiff == -1 || d < closestDiff { closestDiff = d; closest = l } else if d == closestDiff && l < closest { closest = l }
        }
        hypLength += h.count
        refLength += closest
        for (g, c) in Self.ngrams(h) {
            total[g.count - 1] += c
            if let rc = refMax[g] { correct[g.count - 1] += min(c, rc) }
        }
    }

    static func ngrams(_ tokens: [String]) -> [[ScalarKey]: Int] {
        let keys = tokens.map(ScalarKey.init)
        var out: [[ScalarKey]: Int] = [:]
        for n in 1...maxOrder where keys.count >= n {
            for i in 0...(keys.count - n) { out[Array(keys[i..<(i + n)]), default: 0] += 1 }
        }
        return out
    }

    /// The corpus BLEU, 0-100 (sacrebleu's `compute_bleu`).
    public var score: Double {
        var bp = 1.0
        if hypLength < refLength { bp = hypLength > 0 ? exp(1 - Double(refLength) / Double(hypLength)) : 0 }
        guard correct.contains(where: { $0 > 0 }) else { return 0 }
        var precisions = [Double](repeating: 0, count: Self.maxOrder)
        var smooth = 1.0
        for n in 0..<Self.maxOrder {
            if total[n] == 0 { break }
            if correct[n] == 0 {
                smooth *= 2
                precisions[n] = 100 / (smooth * Double(total[n]))
            } else {
                precisions[n] = 100 * Double(correct[n]) / Double(total[n])
            }
        }
        let logs = precisions.map { $0 == 0 ? -9_999_999_999 : log($0) }
        return bp * exp(logs.reduce(0, +) / Double(Self.maxOrder))
    }
}
