/// Hashing of short byte strings (vocabulary entries, pre-tokenized words).
enum ByteHashing {
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: count)
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 8 <= count {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        if i < count {
            var w: UInt64 = 0
            var shift: UInt64 = 0
            while i < count {
                w |= UInt64(p[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ w) &* 0x94D0_49BB_1331_11EB
            h ^= h >> 29
        }
        h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
        h ^= h >> 32
        return h | 1  // 0 marks an empty slot
    }

    /// Calls `body` with a pointer to the bytes (a valid one even when `bytes` is empty).
    static func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        bytes.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { return body(base, b.count) }
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body($0, 0) }
        }
    }

    @inline(__always)
    static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var i = 0
        while i < count {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }
}

/// An immutable-after-build map from byte strings to token ids (open addressing).
/// Keying by bytes, not `String`, keeps canonically equivalent spellings distinct.
struct ByteStringTable: Sendable {
    private struct Slot: Sendable {
        var hash: UInt64 = 0
        var keyStart: UInt32 = 0
        var keyCount: UInt32 = 0
        var value: Int32 = -1
    }
    private var slots: [Slot]
    private var keys: [UInt8] = []
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: Slot(), count: size)
        mask = size - 1
    }

    /// Inserts or replaces (a later duplicate wins, as when Python/Rust build a dict).
    mutating func set(_ key: [UInt8], _ value: Int32) {
        if (count + 1) * 2 > slots.count { grow() }
        let h = ByteHashing.withBytes(key) { ByteHashing.hash($0, $1) }
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].hash != 0 {
            if slots[i].hash == h, Int(slots[i].keyCount) == key.count,
               keys[Int(slots[i].keyStart)..<Int(slots[i].keyStart) + key.count].elementsEqual(key) {
                slots[i].value = value
                return
            }
            i = (i + 1) & mask
        }
        slots[i] = Slot(hash: h, keyStart: UInt32(keys.count), keyCount: UInt32(key.count), value: value)
        keys.append(contentsOf: key)
        count += 1
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(), count: old.count * 2)
        mask = slots.count - 1
        for s in old where s.hash != 0 {
            var i = Int(truncatingIfNeeded: s.hash) & mask
            while slots[i].hash != 0 { i = (i + 1) & mask }
            slots[i] = s
        }
    }

    /// The id for `p[0..<count]`, or -1.
    @inline(__always)
    func get(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        let h = ByteHashing.hash(p, n)
        return slots.withUnsafeBufferPointer { slots in
            keys.withUnsafeBufferPointer { keys in
                var i = Int(truncatingIfNeeded: h) & mask
                while true {
                    let s = slots[i]
                    if s.hash == 0 { return -1 }
                    if s.hash == h, Int(s.keyCount) == n,
                       let base = keys.baseAddress, ByteHashing.equal(base + Int(s.keyStart), p, n) {
                        return s.value
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    func get(_ key: [UInt8]) -> Int32 {
        ByteHashing.withBytes(key) { get($0, $1) }
    }
}

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
