import Foundation

/// The order of one epoch: which examples go together in each batch.
///
/// Built from the sequence lengths, the batch size, the run's seed and the epoch alone,
/// so a run resumed at (epoch, batch index) rebuilds exactly the same plan. Examples are
/// shuffled (seeded SplitMix64, Fisher–Yates); with `groupByLength` they are then sorted
/// by length within mega-batches of `megaBatchFactor × batchSize`, cut into batches (so
/// a batch holds sequences of similar length and little compute goes to padding), and
/// the batches are shuffled; as in `transformers`' `LengthGroupedSampler`, the batch with
/// the longest sequence comes first so a run that would run out of memory does so at once.
/// Every index appears exactly once; only the last batch of a mega-batch may be short.
public struct BatchPlan: Sendable, Codable, Equatable {
    public let epoch: Int
    public let seed: UInt64
    public let batchSize: Int
    public let groupByLength: Bool
    /// Example indices, batch by batch.
    public let batches: [[Int]]

    public static let megaBatchFactor = 50

    /// A plan for `lengths.count` examples. A batch size below 1 is taken as 1.
    public init(lengths: [Int], batchSize: Int, seed: UInt64, epoch: Int, groupByLength: Bool = true) {
        let size = max(1, batchSize)
        self.epoch = epoch
        self.seed = seed
        self.batchSize = size
        self.groupByLength = groupByLength
        var rng = SplitMix64(seed: Self.epochSeed(seed, epoch))
        var order = Array(lengths.indices)
        Self.shuffle(&order, &rng)
        guard groupByLength else {
            batches = Self.chunks(order, size)
            return
        }
        let (product, overflow) = size.multipliedReportingOverflow(by: Self.megaBatchFactor)
        let mega = overflow ? Int.max : product
        var out: [[Int]] = []
        var start = 0
        while start < order.count {
            let end = order.count - start > mega ? start + mega : order.count
            // Longest first; ties keep the shuffled order, so the result never depends on the sort's stability.
            let group = order[start..<end].enumerated().sorted {
                lengths[$0.element] != lengths[$1.element] ? lengths[$0.element] > lengths[$1.element] : $0.offset < $1.offset
            }.map(\.element)
            out += Self.chunks(group, size)
            start = end
        }
        Self.shuffle(&out, &rng)
        if let longest = out.indices.max(by: { Self.maxLength(out[$0], lengths) < Self.maxLength(out[$1], lengths) }), longest != 0 {
            out.swapAt(0, longest)
        }
        batches = out
    }

    /// Number of batches.
    public var count: Int { batches.count }

    /// Padding positions when every batch is padded to its longest sequence, over all positions.
    public func paddingFraction(lengths: [Int]) -> Double {
        var padded = 0, real = 0
        for b in batches {
            let m = Self.maxLength(b, lengths)
            padded += m * b.count
            real += b.reduce(0) { $0 + lengths[$1] }
        }
        return padded == 0 ? 0 : Double(padded - real) / Double(padded)
    }

    /// Splits off a validation set, deterministically for a seed.
    ///
    /// Examples are grouped so that related ones land on the same side: all windows of
    /// one document share an origin, and all questions about one SQuAD paragraph share
    /// an origin up to their `.qas[N]` suffix. Groups are shuffled and taken for
    /// validation until it holds `fraction` of the examples (rounded, at least one when
    /// `fraction > 0` and there are two or more examples); at least one group always stays
    /// for training. With a single group, examples are split one by one. Both parts keep
    /// the input order.
    public static func split(_ examples: [TokenizedExample], fraction: Double, seed: UInt64)
        -> (train: [TokenizedExample], validation: [TokenizedExample]) {
        guard fraction.isFinite, fraction > 0, examples.count >= 2 else { return (examples, []) }
        var target = Int((min(fraction, 1) * Double(examples.count)).rounded())
        target = min(max(target, 1), examples.count - 1)
        var groupIndex: [String: Int] = [:]
        var groups: [[Int]] = []
        for (i, e) in examples.enumerated() {
            let key = splitGroup(of: e.origin)
            if let g = groupIndex[key] { groups[g].append(i) } else { groupIndex[key] = groups.count; groups.append([i]) }
        }
        if groups.count < 2 { groups = examples.indices.map { [$0] } }
        var rng = SplitMix64(seed: epochSeed(seed, -1))
        shuffle(&groups, &rng)
        var inValidation = [Bool](repeating: false, count: examples.count)
        var taken = 0
        for g in groups.dropLast() where taken < target {
            for i in g { inValidation[i] = true }
            taken += g.count
        }
        var train: [TokenizedExample] = [], validation: [TokenizedExample] = []
        for (i, e) in examples.enumerated() {
            if inValidation[i] { validation.append(e) } else { train.append(e) }
        }
        return (train, validation)
    }

    /// The origin without a trailing `.qas[N]`: questions about one paragraph stay together.
    static func splitGroup(of origin: String) -> String {
        guard origin.hasSuffix("]"), let r = origin.range(of: ".qas[", options: .backwards) else { return origin }
        let digits = origin[r.upperBound..<origin.index(before: origin.endIndex)]
        return !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber) ? String(origin[..<r.lowerBound]) : origin
    }

    static func maxLength(_ batch: [Int], _ lengths: [Int]) -> Int {
        batch.reduce(0) { max($0, lengths[$1]) }
    }

    static func chunks(_ a: [Int], _ size: Int) -> [[Int]] {
        stride(from: 0, to: a.count, by: size).map { Array(a[$0..<min($0 + size, a.count)]) }
    }

    /// A generator seed per (run seed, epoch), so each epoch has its own order.
    static func epochSeed(_ seed: UInt64, _ epoch: Int) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (UInt64(bitPattern: Int64(epoch)) &* 0xD1B5_4A32_D192_ED03))
        return g.next()
    }

    /// Fisher–Yates with our own bounded draws, so orders are the same on every platform and Swift version.
    static func shuffle<T>(_ a: inout [T], _ rng: inout SplitMix64) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = uniform(below: i + 1, &rng)
            if i != j { a.swapAt(i, j) }
        }
    }

    /// Uniform in 0..<n (Lemire's multiply-and-reject, no modulo bias).
    static func uniform(below n: Int, _ rng: inout SplitMix64) -> Int {
        let bound = UInt64(n)
        var m = rng.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = rng.next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }
}
