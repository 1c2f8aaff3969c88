import CLangTuneKernels
import Foundation

/// Learning-rate schedule with linear warm-up, as transformers' `get_*_schedule_with_warmup`.
public enum LRSchedule: String, Sendable, Codable, CaseIterable {
    case constant, linear, cosine

    /// Multiplier of the peak learning rate at optimizer step `step` (0-based) of `total`.
    public func factor(step: Int, total: Int, warmup: Int) -> Double {
        if step < warmup { return Double(step) / Double(max(1, warmup)) }
        return factor(progress: Double(step - warmup) / Double(max(1, total - warmup)))
    }

    /// Multiplier after warm-up at `progress` (0 at the start, 1 at the end) of the run; a
    /// time-budgeted run measures progress in seconds instead of steps.
    public func factor(progress: Double) -> Double {
        let progress = min(max(progress, 0), 1)
        switch self {
        case .constant: return 1
        case .linear: return max(0, 1 - progress)
        case .cosine: return max(0, 0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}

/// AdamW settings (torch.optim.AdamW's meaning and defaults, except the
/// learning rate, which follows PEFT recipes).
public struct AdamWOptions: Sendable, Codable, Equatable {
    public var learningRate: Double = 2e-4
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var weightDecay: Double = 0
    /// Global gradient-norm clipping; 0 disables.
    public var maxGradNorm: Double = 1
    public init() {}
}

/// AdamW over a LoRA adapter's matrices, with its state (m, v, step) for checkpoints.
public final class LoRAOptimizer: @unchecked Sendable {
    public let options: AdamWOptions
    public internal(set) var step: Int = 0
    let params: [FloatBuffer]
    let m: [FloatBuffer]
    let v: [FloatBuffer]

    public init(adapter: LoRAAdapter, options: AdamWOptions) {
        self.options = options
        params = Self.parameters(of: adapter)
        m = params.map { FloatBuffer(count: $0.count) }
        v = params.map { FloatBuffer(count: $0.count) }
    }

    /// The adapter's matrices in the order gradients use (layer, target, A then B).
    static func parameters(of adapter: LoRAAdapter) -> [FloatBuffer] {
        var out: [FloatBuffer] = []
        for layer in adapter.layers {
            for t in LoRATarget.allCases {
                if let w = layer[t] { out.append(w.a); out.append(w.b) }
            }
        }
        return out
    }

    /// Global L2 norm of the gradients (before clipping).
    public static func gradNorm(_ grads: LoRAGradients) -> Double {
        grads.all.reduce(0.0) { $0 + ltt_grad_sumsq($1.pointer, Int64($1.count)) }.squareRoot()
    }

    /// Clips (as torch.nn.utils.clip_grad_norm_) and applies one AdamW step at `lr`. Returns the pre-clip norm.
    @discardableResult
    public func apply(_ grads: LoRAGradients, lr: Double) -> Double {
        let g = grads.all
        precondition(g.count == params.count)
        let norm = Self.gradNorm(grads)
        if options.maxGradNorm > 0 {
            let coef = options.maxGradNorm / (norm + 1e-6)
            if coef < 1 { for b in g { ltt_scale(b.pointer, Int64(b.count), Float(coef)) } }
        }
        step += 1
        for i in 0..<params.count {
            ltt_adamw_step(params[i].pointer, g[i].pointer, m[i].pointer, v[i].pointer, Int64(params[i].count), lr,
                           options.beta1, options.beta2, options.eps, options.weightDecay, Int64(step))
        }
        return norm
    }

    /// Restores step and moments from a checkpoint.
    func restore(step: Int, m mValues: [[Float]], v vValues: [[Float]]) throws {
        guard mValues.count == m.count, vValues.count == v.count else { throw LoRAError("optimizer state does not match the adapter") }
        for i in 0..<m.count {
            guard mValues[i].count == m[i].count, vValues[i].count == v[i].count else {
                throw LoRAError("optimizer state tensor \(i) has the wrong size")
            }
            m[i].pointer.update(from: mValues[i], count: m[i].count)
            v[i].pointer.update(from: vValues[i], count: v[i].count)
        }
        self.step = step
    }
}
