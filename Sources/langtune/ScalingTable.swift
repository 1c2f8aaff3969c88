import ArgumentParser
import Foundation
import LangTune

/// The scaling model's table: one row per (ranks, bandwidth).
struct ScalingRow: Encodable {
    let ranks: Int
    let gbps: Double
    let allreduce_seconds: Double
    let step_seconds: Double
    let speedup: Double
    let efficiency: Double

    static func rows(_ m: ScalingModel, ranks: [Int], gbps: [Double]) -> [ScalingRow] {
        gbps.flatMap { g in
            ranks.map { n in
                let s = m.speedup(ranks: n, gbps: g)
                return ScalingRow(ranks: n, gbps: g, allreduce_seconds: m.allreduceSeconds(ranks: n, gbps: g),
                                  step_seconds: m.stepSeconds(ranks: n, gbps: g), speedup: s, efficiency: s / Double(n))
            }
        }
    }

    /// Without compute time (`secondsPerSequence` 0) only the exchange is printed.
    static func print(_ rows: [ScalingRow], model m: ScalingModel) {
        let compute = m.secondsPerSequence > 0
        Swift.print(String(format: "data parallel: %.1f MB of LoRA gradients summed per optimizer step (ring allreduce)", Double(m.gradientBytes) / 1e6)
                    + (compute ? String(format: "; %.2f s of compute per sequence, %d sequences per step", m.secondsPerSequence, m.globalBatch) : ""))
        Swift.print("  ranks   Gb/s  MB sent per rank  allreduce s" + (compute ? "   step s   speedup  efficiency" : ""))
        for r in rows {
            Swift.print(String(format: "  %5d  %5.0f  %16.1f  %11.4f", r.ranks, r.gbps, m.bytesPerRank(ranks: r.ranks) / 1e6, r.allreduce_seconds)
                        + (compute ? String(format: "  %7.2f  %8.2f  %9.1f%%", r.step_seconds, r.speedup, 100 * r.efficiency) : ""))
        }
    }
}

/// "2,4,8" → [2, 4, 8].
func parseList<T: LosslessStringConvertible>(_ s: String, _ what: String) throws -> [T] {
    let items = s.split(separator: ",").map { T(String($0.trimmingCharacters(in: .whitespaces))) }
    guard !items.isEmpty, items.allSatisfy({ $0 != nil }) else { throw ValidationError("\(what) must be a comma-separated list of numbers, got \(s)") }
    return items.map { $0! }
}
