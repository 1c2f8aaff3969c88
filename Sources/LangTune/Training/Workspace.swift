/// Buffers a training graph reuses from step to step, so the step loop does not ask the system
/// for memory: a fresh buffer of more than 128 KB is a new mapping whose pages the kernel zeroes on
/// first touch, which cost about a third of a SmolLM2 step (perf: clear_page, page faults).
///
/// Buffers are taken inside `scope { }` and come back to the pool when the scope ends, so a layer's
/// temporaries are reused by the next layer. Sizes are rounded up to size classes (at most 1/8 larger)
/// so that batches of different token counts share buffers; buffers a whole step did not use are
/// freed at its end (`endStep`), so a change of batch shape does not keep the old sizes.
final class Workspace: @unchecked Sendable {
    private var free: [Int: [FloatBuffer]] = [:]
    private var scopes: [[FloatBuffer]] = []
    private var usedThisStep: Set<Int> = []

    /// The size class of `count` floats: the next multiple of 1/8 of its power of two.
    static func sizeClass(_ count: Int) -> Int {
        guard count > 64 else { return max(count, 1) }
        let p = Int.bitWidth - (count - 1).leadingZeroBitCount  // 2^p >= count
        let step = 1 << max(0, p - 4)
        return (count + step - 1) / step * step
    }

    /// A buffer of at least `count` floats (zeroed on request), valid until the enclosing scope ends.
    func floats(_ count: Int, zeroed: Bool = false) -> FloatBuffer {
        precondition(!scopes.isEmpty, "Workspace.floats outside a scope")
        let size = Self.sizeClass(count)
        let b = free[size]?.popLast() ?? FloatBuffer(count: size, zeroed: false)
        if zeroed { b.pointer.update(repeating: 0, count: count) }
        usedThisStep.insert(size)
        scopes[scopes.count - 1].append(b)
        return b
    }

    func scope<R>(_ body: () throws -> R) rethrows -> R {
        scopes.append([])
        defer {
            for b in scopes.removeLast() { free[b.count, default: []].append(b) }
        }
        return try body()
    }

    /// Frees the pooled buffers of sizes the step now ending did not take.
    func endStep() {
        for size in Array(free.keys) where !usedThisStep.contains(size) { free[size] = nil }
        usedThisStep.removeAll(keepingCapacity: true)
    }
}
