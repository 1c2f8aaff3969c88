import CLangTuneKernels
import Dispatch
import Foundation

/// How many threads kernels split their work across. Defaults to the number of
/// active processors; `--threads` overrides it.
public struct Threads: Sendable, Equatable {
    public let count: Int
    public init(_ count: Int? = nil) {
        self.count = max(1, count ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Runs `body(start, end)` over `0..<n` split into at most `count` contiguous ranges.
    /// Ranges are aligned to `grain` so that no two threads share a cache line of output.
    public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Int, Int) -> Void) {
        guard n > 0 else { return }
        let parts = min(count, max(1, n / max(grain, 1)))
        if parts == 1 { body(0, n); return }
        let per = ((n + parts - 1) / parts + grain - 1) / grain * grain
        withoutActuallyEscaping(body) { body in
            var job = PoolJob(body: body, per: per, n: n)
            let ran = Threads.spinningPool && withUnsafeMutablePointer(to: &job) { jp in
                lt_pool_run(Int32(count), Int64(parts), { ctx, p in
                    let job = ctx!.assumingMemoryBound(to: PoolJob.self).pointee
                    let s = Int(p) * job.per, e = min(job.n, s + job.per)
                    if s < e { job.body(s, e) }
                }, jp) == 0
            }
            if ran { return }
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let s = p * per, e = min(n, s + per)
                if s < e { box.value(s, e) }
            }
        }
    }

    /// LangTune's own pool (workers spin briefly between short jobs) unless `LANGTUNE_POOL=dispatch` asks for
    /// Dispatch's, for A/B measurements. Read once.
    static let spinningPool = ProcessInfo.processInfo.environment["LANGTUNE_POOL"] != "dispatch"
}

/// One parallel loop handed to the C pool: its body and how `0..<n` is split.
private struct PoolJob {
    let body: (Int, Int) -> Void
    let per: Int
    let n: Int
}

/// Hands a non-Sendable value (a closure over raw buffers) to worker threads
/// that each touch disjoint memory. The caller guarantees the disjointness.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
