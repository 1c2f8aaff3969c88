import Foundation

/// A bounded cache from pre-tokenized words (bytes) to their BPE ids. Not thread-safe by
/// itself: `EncodeWorkspace` guards it. Memory is allocated once; when the table or an arena
/// fills up the cache is emptied, which keeps memory bounded and follows the text.
final class WordCache {
    private struct Slot {
        var hash: UInt64 = 0
        var keyStart: UInt32 = 0
        var keyCount: UInt32 = 0
        var valueStart: UInt32 = 0
        var valueCount: UInt32 = 0
    }
    private let slots: UnsafeMutablePointer<Slot>
    private let keys: UnsafeMutablePointer<UInt8>
    private let values: UnsafeMutablePointer<Int32>
    private let slotCount: Int
    private let keyCapacity: Int
    private let valueCapacity: Int
    private var keyCount = 0
    private var valueCount = 0
    private var entries = 0
    /// Longer words are not cached (they are rare and would crowd the arenas).
    static let maxWordBytes = 128

    init(slotCount: Int = 1 << 16) {
        self.slotCount = slotCount
        keyCapacity = slotCount * 16
        valueCapacity = slotCount * 4
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: Slot(), count: slotCount)
        keys = .allocate(capacity: keyCapacity)
        values = .allocate(capacity: valueCapacity)
    }

    deinit {
        slots.deallocate()
        keys.deallocate()
        values.deallocate()
    }

    /// Appends the cached ids for the word to `out` and returns true, or returns false.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, into out: inout [Int]) -> Bool {
        let mask = slotCount - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s.hash == 0 { return false }
            if s.hash == h, Int(s.keyCount) == n, ByteHashing.equal(keys + Int(s.keyStart), p, n) {
                let v = values + Int(s.valueStart)
                for j in 0..<Int(s.valueCount) { out.append(Int(v[j])) }
                return true
            }
            i = (i + 1) & mask
        }
    }

    /// Records the ids of a word that `lookup` has just missed.
    func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, ids: ArraySlice<Int>) {
        guard n <= WordCache.maxWordBytes, ids.count <= WordCache.maxWordBytes else { return }
        if entries >= slotCount / 2 || keyCount + n > keyCapacity || valueCount + ids.count > valueCapacity {
            slots.update(repeating: Slot(), count: slotCount)
            keyCount = 0
            valueCount = 0
            entries = 0
        }
        let mask = slotCount - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].hash != 0 { i = (i + 1) & mask }
        slots[i] = Slot(hash: h, keyStart: UInt32(keyCount), keyCount: UInt32(n),
                        valueStart: UInt32(valueCount), valueCount: UInt32(ids.count))
        (keys + keyCount).update(from: p, count: n)
        keyCount += n
        for id in ids {
            values[valueCount] = Int32(truncatingIfNeeded: id)
            valueCount += 1
        }
        entries += 1
    }
}

/// The word cache and working arrays of a tokenizer. An `encode` call takes them with
/// `tryLock`; a concurrent call that finds them busy works with fresh arrays and no cache
/// rather than waiting.
final class EncodeWorkspace: @unchecked Sendable {
    let lock = NSLock()
    let cache = WordCache()
    var state = EncodeState()
}

/// Working arrays reused across the pieces of an `encode` call.
struct EncodeState {
    var segments: [InputSegment] = []
    var moreSegments: [InputSegment] = []
    var pre = PreTokenizer.Scratch()
    var bpe = BPEModel.Scratch()
    var sentencePiece = SentencePieceBPE.Scratch()
}
