/// Merge ranks keyed by the pair of token ids: (left, right) → (rank, merged id).
/// Key and value share a 16-byte slot, so a lookup touches one cache line.
struct MergeTable: Sendable {
    private struct Slot: Sendable {
        var key: UInt64
        var value: UInt64
    }
    private var slots: [Slot]
    private let mask: Int
    static let emptyKey = UInt64.max

    init(capacity: Int) {
        // Load factor at most 2/3: a smaller table misses the cache less often.
        var size = 16
        while size * 2 < capacity * 3 { size <<= 1 }
        slots = [Slot](repeating: Slot(key: MergeTable.emptyKey, value: 0), count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Inserts or replaces: a repeated pair keeps its last rank, as in `tokenizers`' merge map.
    /// At most `capacity` distinct pairs may be inserted.
    mutating func set(left: Int32, right: Int32, rank: UInt32, merged: Int32) {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var i = MergeTable.slot(key, mask)
        while slots[i].key != MergeTable.emptyKey && slots[i].key != key { i = (i + 1) & mask }
        slots[i] = Slot(key: key, value: UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged)))
    }

    /// `(rank << 32) | merged id`, or `UInt64.max` when the pair does not merge.
    @inline(__always)
    func get(_ left: Int32, _ right: Int32) -> UInt64 {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        return slots.withUnsafeBufferPointer { slots in
            var i = MergeTable.slot(key, mask)
            while true {
                let s = slots[i]
                if s.key == key { return s.value }
                if s.key == MergeTable.emptyKey { return UInt64.max }
                i = (i + 1) & mask
            }
        }
    }
}
