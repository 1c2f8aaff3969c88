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
