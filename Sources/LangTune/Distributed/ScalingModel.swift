import Foundation

/// Data-parallel step time on paper, from the compute of one step and the bytes exchanged:
/// what `inspect --memory --ranks` and `bench memory --nodes` print.
///
/// Strong scaling: the global batch is fixed and split across the ranks, so the busiest rank
/// computes ⌈batch / ranks⌉ sequences; then the LoRA gradients are summed by a ring allreduce,
/// which sends and receives 2(n−1)/n of them per rank, plus one latency per stage and message
/// (`GradientReducer` sends one message per 16 MB bucket; whole matrices per bucket make it 11 rather
/// than 10 for Llama-3-8B's 168 MB). Not modelled: the optimizer step
/// (the same on every rank, small for LoRA), uneven sequence lengths, overlap.
public struct ScalingModel: Sendable, Codable, Equatable {
    /// Seconds of compute (forward and backward) per sequence on one rank.
    public var secondsPerSequence: Double
    /// Sequences per optimizer step, all ranks together.
    public var globalBatch: Int
    /// Bytes of gradients summed per optimizer step.
    public var gradientBytes: Int
    /// Seconds per message and allreduce stage (TCP between nodes: tens of microseconds).
    public var latency: Double = 50e-6
    public var bucketBytes: Int = 16 << 20

    public init(secondsPerSequence: Double, globalBatch: Int, gradientBytes: Int) {
        self.secondsPerSequence = secondsPerSequence
        self.globalBatch = max(1, globalBatch)
        self.gradientBytes = gradientBytes
    }

    /// Bytes of float32 LoRA gradients for an adapter of `rank` on `targets` of a model shaped `config`.
    public static func gradientBytes(config c: LlamaConfig, rank: Int, targets: [LoRATarget] = LoRATarget.allCases) -> Int {
        4 * c.numLayers * targets.reduce(0) { $0 + rank * ($1.shape(c).in + $1.shape(c).out) }
    }

    /// Bytes each rank sends (and receives) in one ring allreduce of the gradients.
    public func bytesPerRank(ranks: Int) -> Double {
        ranks > 1 ? 2 * Double(ranks - 1) / Double(ranks) * Double(gradientBytes) : 0
    }

    /// Seconds of one gradient allreduce over links of `gbps` gigabits per second.
    public func allreduceSeconds(ranks: Int, gbps: Double) -> Double {
        guard ranks > 1 else { return 0 }
        let messages = (Double(gradientBytes) / Double(bucketBytes)).rounded(.up)
        return bytesPerRank(ranks: ranks) / (gbps * 1e9 / 8) + messages * 2 * Double(ranks - 1) * latency
    }

    /// Seconds of one optimizer step on `ranks` ranks.
    public func stepSeconds(ranks: Int, gbps: Double) -> Double {
        let busiest = (Double(globalBatch) / Double(max(1, ranks))).rounded(.up)
        return busiest * secondsPerSequence + allreduceSeconds(ranks: ranks, gbps: gbps)
    }

    /// How many times faster than one rank.
    public func speedup(ranks: Int, gbps: Double) -> Double {
        Double(globalBatch) * secondsPerSequence / stepSeconds(ranks: ranks, gbps: gbps)
    }
}
