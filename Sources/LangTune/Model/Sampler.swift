import Foundation

/// How the next token is chosen. Defaults are greedy decoding.
/// The order of the filters follows transformers' `generate`: repetition
/// penalty, temperature, top-k, top-p, min-p, then a draw.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Double = 0
    /// Keep only the k most likely tokens; 0 disables.
    public var topK: Int = 0
    /// Keep the smallest set of tokens whose probability mass reaches p; 1 disables.
    public var topP: Double = 1
    /// Drop tokens whose probability is below minP × the top probability; 0 disables.
    public var minP: Double = 0
    /// > 1 discourages tokens already in the context (CTRL-style, as transformers); 1 disables.
    public var repetitionPenalty: Double = 1
    public var seed: UInt64 = 0

    public init(temperature: Double = 0, topK: Int = 0, topP: Double = 1, minP: Double = 0,
                repetitionPenalty: Double = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    public var isGreedy: Bool { temperature <= 0 }
}

/// Picks tokens from logits according to `SamplingOptions`, with its own seeded generator.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    private var rng: SplitMix64

    public init(_ options: SamplingOptions) {
        self.options = options
        rng = SplitMix64(seed: options.seed)
    }

    /// Index of the largest value (first one on ties, like torch.argmax).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in logits.enumerated() where v > bestValue { best = i; bestValue = v }
        return best
    }

    /// Chooses the next token given the logits and the tokens seen so far.
    public mutating func next(logits input: [Float], context: [Int]) -> Int {
        var logits = input
        if options.repetitionPenalty != 1 {
            let p = Float(options.repetitionPenalty)
            for id in Set(context) where id >= 0 && id < logits.count {
                logits[id] = logits[id] < 0 ? logits[id] * p : logits[id] / p
            }
        }
        if options.isGreedy { return Self.argmax(logits) }
        let t = Float(options.temperature)
        // Candidates sorted by logit, descending; filters shrink the prefix kept.
        var order = Array(0..<logits.count)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        var keep = order.count
        if options.topK > 0 { keep = min(keep, options.topK) }
        let maxLogit = logits[order[0]] / t
        var probs = [Double](repeating: 0, count: keep)
        var total = 0.0
        for i in 0..<keep {
            probs[i] = exp(Double(logits[order[i]] / t - maxLogit))
            total += probs[i]
        }
        for i in 0..<keep { probs[i] /= total }
        if options.topP < 1 {
            var cum = 0.0
            var cut = keep
            for i in 0..<keep {
                cum += probs[i]
                if cum >= options.topP { cut = i + 1; break }
            }
            keep = max(1, cut)
        }
        if options.minP > 0 {
            let threshold = options.minP * probs[0]
            var cut = 1
            while cut < keep && probs[cut] >= threshold { cut += 1 }
            keep = cut
        }
        let mass = probs[0..<keep].reduce(0, +)
        var r = rng.nextDouble() * mass
        for i in 0..<keep {
            r -= probs[i]
            if r < 0 { return order[i] }
        }
        return order[keep - 1]
    }
}
