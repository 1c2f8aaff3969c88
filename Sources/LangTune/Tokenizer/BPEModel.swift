/// Byte-level BPE over raw bytes: the vocabulary is keyed by the bytes a token spells,
/// merges by the pair of ids. Merging follows `tokenizers`' `Word::merge_all`: always the
/// pair with the lowest rank, the leftmost one on ties.
struct BPEModel: Sendable {
    /// Raw bytes → id, for tokens spelled in the byte-level alphabet.
    let vocab: ByteStringTable
    let merges: MergeTable
    /// The id of each single byte, or -1 when the vocabulary lacks it.
    let byteIds: [Int32]
    /// A word that is itself a vocabulary entry maps straight to it (Llama 3).
    let ignoreMerges: Bool
    let unknownId: Int32
    let fuseUnknown: Bool

    /// Words up to this many symbols merge with a linear scan; longer ones use a heap.
    static let linearLimit = 96

    struct Scratch {
        var symbols: [Int32] = []
        var pairs: [UInt64] = []
        // Heap path
        var prev: [Int32] = []
        var next: [Int32] = []
        var heap: [HeapEntry] = []
    }

    struct HeapEntry {
        /// rank << 32 | position: smaller is merged first.
        var order: UInt64
        var merged: Int32
    }

    /// Appends the ids of one pre-tokenized word (`n` > 0 bytes) to `out`.
    func encodeWord(_ p: UnsafePointer<UInt8>, _ n: Int, scratch: inout Scratch, into out: inout [Int]) {
        if ignoreMerges {
            let id = vocab.get(p, n)
            if id >= 0 { out.append(Int(id)); return }
        }
        scratch.symbols.removeAll(keepingCapacity: true)
        var lastWasUnknown = false
        byteIds.withUnsafeBufferPointer { byteIds in
            for i in 0..<n {
                let id = byteIds[Int(p[i])]
                if id >= 0 {
                    scratch.symbols.append(id)
                    lastWasUnknown = false
                } else if unknownId >= 0 {
                    if !(fuseUnknown && lastWasUnknown) { scratch.symbols.append(unknownId) }
                    lastWasUnknown = true
                }
            }
        }
        if scratch.symbols.count > BPEModel.linearLimit {
            mergeWithHeap(&scratch)
        } else {
            mergeLinear(&scratch)
        }
        for s in scratch.symbols { out.append(Int(s)) }
    }

    func mergeLinear(_ scratch: inout Scratch) {
        var n = scratch.symbols.count
        guard n >= 2 else { return }
        scratch.pairs.removeAll(keepingCapacity: true)
        for k in 0..<(n - 1) { scratch.pairs.append(merges.get(scratch.symbols[k], scratch.symbols[k + 1])) }
        scratch.symbols.withUnsafeMutableBufferPointer { sym in
            scratch.pairs.withUnsafeMutableBufferPointer { pairs in
                while n >= 2 {
                    // Rank in the high half: the smallest value is the lowest rank, leftmost on ties.
                    var best = UInt64.max
                    var bk = -1
                    for k in 0..<(n - 1) where pairs[k] < best {
                        best = pairs[k]
                        bk = k
                    }
                    if bk < 0 { break }
                    sym[bk] = Int32(truncatingIfNeeded: UInt32(truncatingIfNeeded: best))
                    var k = bk + 1
                    while k + 1 < n { sym[k] = sym[k + 1]; k += 1 }
                    k = bk + 1
                    while k + 1 < n - 1 { pairs[k] = pairs[k + 1]; k += 1 }
                    n -= 1
                    if bk > 0 { pairs[bk - 1] = merges.get(sym[bk - 1], sym[bk]) }
                    if bk < n - 1 { pairs[bk] = merges.get(sym[bk], sym[bk + 1]) }
                }
            }
        }
        scratch.symbols.removeLast(scratch.symbols.count - n)
    }

    /// The priority-queue merge of `tokenizers` (stale entries are skipped when the pair
    /// at their position no longer produces their merged id).
    func mergeWithHeap(_ scratch: inout Scratch) {
        let n = scratch.symbols.count
        guard n >= 2 else { return }
        scratch.prev.removeAll(keepingCapacity: true)
        scratch.next.removeAll(keepingCapacity: true)
        scratch.heap.removeAll(keepingCapacity: true)
        for i in 0..<n {
            scratch.prev.append(Int32(i - 1))
            scratch.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        var alive = [Bool](repeating: true, count: n)
        for k in 0..<(n - 1) {
            let m = merges.get(scratch.symbols[k], scratch.symbols[k + 1])
            if m != UInt64.max { heapPush(&scratch.heap, m, position: k) }
        }
        while let top = heapPop(&scratch.heap) {
            let pos = Int(top.order & 0xFFFF_FFFF)
            guard alive[pos] else { continue }
            let nextPos = Int(scratch.next[pos])
            guard nextPos >= 0 else { continue }
            let m = merges.get(scratch.symbols[pos], scratch.symbols[nextPos])
            guard m != UInt64.max, Int32(truncatingIfNeeded: UInt32(truncatingIfNeeded: m)) == top.merged else { continue }
            scratch.symbols[pos] = top.merged
            alive[nextPos] = false
            let after = scratch.next[nextPos]
            scratch.next[pos] = after
            if after >= 0 { scratch.prev[Int(after)] = Int32(pos) }
            let before = Int(scratch.prev[pos])
            if before >= 0 {
                let mp = merges.get(scratch.symbols[before], scratch.symbols[pos])
                if mp != UInt64.max { heapPush(&scratch.heap, mp, position: before) }
            }
            if after >= 0 {
                let mn = merges.get(scratch.symbols[pos], scratch.symbols[Int(after)])
                if mn != UInt64.max { heapPush(&scratch.heap, mn, position: pos) }
            }
        }
        var w = 0
        for i in 0..<n where alive[i] {
            scratch.symbols[w] = scratch.symbols[i]
            w += 1
        }
        scratch.symbols.removeLast(n - w)
    }

    private func heapPush(_ heap: inout [HeapEntry], _ merge: UInt64, position: Int) {
        let entry = HeapEntry(order: (merge >> 32) << 32 | UInt64(position),
                              merged: Int32(truncatingIfNeeded: UInt32(truncatingIfNeeded: merge)))
        heap.append(entry)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if heap[parent].order <= heap[i].order { break }
            heap.swapAt(parent, i)
            i = parent
        }
    }

    private func heapPop(_ heap: inout [HeapEntry]) -> HeapEntry? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        heap[0] = last
        var i = 0
        let count = heap.count
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < count, heap[l].order < heap[m].order { m = l }
            if r < count, heap[r].order < heap[m].order { m = r }
            if m == i { break }
            heap.swapAt(m, i)
            i = m
        }
        return top
    }
}
