import Foundation

/// A bounded cache from pre-tokenized words (bytes) to their BPE ids, shared by the
/// calls of one tokenizer. A call takes it with `tryLock`; a concurrent call that finds
/// it busy encodes without it rather than waiting. When full it is emptied, which keeps
/// memory bounded and lets the working set follow the text.
final class WordCache: @unchecked Sendable {
    private struct Slot {
        var hash: UInt64 = 0
        var keyStart: UInt32 = 0
        var keyCount: UInt32 = 0
        var valueStart: UInt32 = 0
        var valueCount: UInt32 = 0
    }
    private let lock = NSLock()
    private var slots: [Slot]
    private var keys: [UInt8] = []
    private var values: [Int32] = []
    private let mask: Int
    private let maxEntries: Int
    private var count = 0
    /// Longer words are not cached (they are rare and would crowd the arenas).
    static let maxWordBytes = 128

    init(slotCount: Int = 1 << 16) {
        slots = [Slot](repeating: Slot(), count: slotCount)
        mask = slotCount - 1
        maxEntries = slotCount / 2
    }

    func tryAcquire() -> Bool { lock.try() }
    func release() { lock.unlock() }

    /// Appends the cached ids for the word to `out` and returns true, or returns false. Caller holds the lock.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, into out: inout [Int]) -> Bool {
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s.hash == 0 { return false }
            if s.hash == h, Int(s.keyCount) == n {
                let same = keys.withUnsafeBufferPointer { k in
                    guard let base = k.baseAddress else { return n == 0 }
                    return ByteHashing.equal(base + Int(s.keyStart), p, n)
                }
                if same {
                    values.withUnsafeBufferPointer { v in
                        for j in Int(s.valueStart)..<Int(s.valueStart) + Int(s.valueCount) { out.append(Int(v[j])) }
                    }
                    return true
                }
            }
            i = (i + 1) & mask
        }
    }

    /// Caller holds the lock and has just missed this word.
    func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, ids: ArraySlice<Int>) {
        guard n <= WordCache.maxWordBytes else { return }
        if count >= maxEntries {
            for k in slots.indices { slots[k] = Slot() }
            keys.removeAll(keepingCapacity: true)
            values.removeAll(keepingCapacity: true)
            count = 0
        }
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].hash != 0 { i = (i + 1) & mask }
        slots[i] = Slot(hash: h, keyStart: UInt32(keys.count), keyCount: UInt32(n),
                        valueStart: UInt32(values.count), valueCount: UInt32(ids.count))
        keys.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        for id in ids { values.append(Int32(truncatingIfNeeded: id)) }
        count += 1
    }
}
