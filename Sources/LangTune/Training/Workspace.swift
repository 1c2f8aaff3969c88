/// Buffers a training graph reuses from step to step, so the step loop does not ask the system
/// for memory: a fresh buffer of more than 128 KB is a new mapping whose pages the kernel zeroes on
/// first touch, which cost about a third of a SmolLM2 step (perf: clear_page, page faults).
///
/// Buffers are taken inside `scope { }` and come back to the pool when the scope ends, so a layer's
/// temporaries are reused by the next layer. Sizes are rounded up to size classes (at most 1/8 larger)
/// and a request may take a pooled buffer up to twice its size, so batches of different token counts
/// share the largest batch's buffers; buffers a whole step did not use are freed at its end
/// (`endStep`), and a new larger size replaces the comparable smaller ones, so a change of batch shape
/// does not keep the old sizes.
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
        let b = free[size]?.popLast() ?? fit(size) ?? fresh(size)
        if zeroed { b.pointer.update(repeating: 0, count: count) }
        usedThisStep.insert(b.count)
        scopes[scopes.count - 1].append(b)
        return b
    }

    /// The smallest pooled buffer of up to twice `size`: steps of fewer tokens reuse the buffers of the
    /// largest step so far instead of adding a set of their own sizes (Q&A batches vary in length).
    private func fit(_ size: Int) -> FloatBuffer? {
        guard let k = free.keys.filter({ $0 > size && $0 <= 2 * size && free[$0]?.isEmpty == false }).min() else { return nil }
        return free[k]!.popLast()
    }

    /// A new buffer; pooled buffers of the comparable smaller sizes this step has not taken go first
    /// (a longer batch than any before: its buffers replace theirs rather than adding to them).
    private func fresh(_ size: Int) -> FloatBuffer {
        for k in Array(free.keys) where k < size && k >= size / 2 && !usedThisStep.contains(k) { free[k] = nil }
        return FloatBuffer(count: size, zeroed: false)
    }

    func scope<R>(_ body: () throws -> R) rethrows -> R {
        scopes.append([])
        defer {
            for b in scopes.removeLast() { free[b.count, default: []].append(b) }
        }
        return try body()
    }

    /// Floats held in the pool (free buffers), for tests.
    var pooledFloats: Int { free.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }

    /// Frees the pooled buffers of sizes the step now ending did not take.
    func endStep() {
        for size in Array(free.keys) where !usedThisStep.contains(size) { free[size] = nil }
        usedThisStep.removeAll(keepingCapacity: true)
    }
}
