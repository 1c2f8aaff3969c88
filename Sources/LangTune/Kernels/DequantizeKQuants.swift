// K-quants: super-blocks of 256 elements (ggml `QK_K`), layouts from ggml-common.h.

// Q2_K: {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin} = 84 bytes.
// Each scale byte holds a 4-bit scale (low) and 4-bit min (high) for 16 elements.
func dequantizeQ2_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 84
        var y = dst + b * 256
        let d = halfAt(x, 80), dmin = halfAt(x, 82)
        var q = x + 16
        var scale = 0
        for _ in 0..<2 {
            var shift: UInt8 = 0
            for _ in 0..<4 {
                for half in 0..<2 {
                    let sc = byteAt(x, scale)
                    scale += 1
                    let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 {
                        y[l] = dl * Float((byteAt(q, 16 * half + l) >> shift) & 3) - ml
                    }
                    y += 16
                }
                shift += 2
            }
            q += 32
        }
    }
}

// Q3_K: {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d} = 110 bytes.
// Sixteen 6-bit scales (offset by 32) packed into 12 bytes; element value is
// the 2-bit quant minus 4 unless its bit in hmask is set.
func dequantizeQ3_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    withUnsafeTemporaryAllocation(of: Int8.self, capacity: 16) { sc in
        for b in 0..<blocks {
            let x = src + b * 110
            var y = dst + b * 256
            let dAll = halfAt(x, 108)
            let s = x + 96
            for i in 0..<4 {
                sc[i] = Int8(bitPattern: (byteAt(s, i) & 0xF) | ((byteAt(s, i + 8) & 3) << 4))
                sc[i + 4] = Int8(bitPattern: (byteAt(s, i + 4) & 0xF) | (((byteAt(s, i + 8) >> 2) & 3) << 4))
                sc[i + 8] = Int8(bitPattern: (byteAt(s, i) >> 4) | (((byteAt(s, i + 8) >> 4) & 3) << 4))
                sc[i + 12] = Int8(bitPattern: (byteAt(s, i + 4) >> 4) | (((byteAt(s, i + 8) >> 6) & 3) << 4))
            }
            var q = x + 32
            var m: UInt8 = 1
            var scale = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half in 0..<2 {
                        let dl = dAll * Float(Int32(sc[scale]) - 32)
                        scale += 1
                        for l in 0..<16 {
                            let k = 16 * half + l
                            let low = Int32((byteAt(q, k) >> shift) & 3)
                            let high: Int32 = byteAt(x, k) & m != 0 ? 0 : 4
                            y[l] = dl * Float(low - high)
                        }
                        y += 16
                    }
                    shift += 2
                    m <<= 1
                }
                q += 32
            }
        }
    }
}

/// Scale and min number `j` (0..<8) of a Q4_K/Q5_K super-block: 6 bits each,
/// packed into 12 bytes (ggml `get_scale_min_k4`).
@inline(__always)
func scaleMinK4(_ j: Int, _ q: UnsafeRawPointer) -> (UInt8, UInt8) {
    if j < 4 {
        return (byteAt(q, j) & 63, byteAt(q, j + 4) & 63)
    }
    return ((byteAt(q, j + 4) & 0xF) | ((byteAt(q, j - 4) >> 6) << 4),
            (byteAt(q, j + 4) >> 4) | ((byteAt(q, j) >> 6) << 4))
}

// Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]} = 144 bytes; x = d·sc·q − dmin·m.
func dequantizeQ4_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 144
        var y = dst + b * 256
        let d = halfAt(x, 0), dmin = halfAt(x, 2)
        let scales = x + 4
        var q = x + 16
        for j in 0..<4 {
            let (sc1, m1) = scaleMinK4(2 * j, scales)
            let (sc2, m2) = scaleMinK4(2 * j + 1, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            for l in 0..<32 { y[l] = d1 * Float(byteAt(q, l) & 0xF) - min1 }
            for l in 0..<32 { y[32 + l] = d2 * Float(byteAt(q, l) >> 4) - min2 }
            y += 64
            q += 32
        }
    }
}

// Q5_K: {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]} = 176 bytes.
func dequantizeQ5_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 176
        var y = dst + b * 256
        let d = halfAt(x, 0), dmin = halfAt(x, 2)
        let scales = x + 4
        let qh = x + 16
        var ql = x + 48
        var u1: UInt8 = 1, u2: UInt8 = 2
        for j in 0..<4 {
            let (sc1, m1) = scaleMinK4(2 * j, scales)
            let (sc2, m2) = scaleMinK4(2 * j + 1, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            for l in 0..<32 {
                let h: UInt8 = byteAt(qh, l) & u1 != 0 ? 16 : 0
                y[l] = d1 * Float((byteAt(ql, l) & 0xF) + h) - min1
            }
            for l in 0..<32 {
                let h: UInt8 = byteAt(qh, l) & u2 != 0 ? 16 : 0
                y[32 + l] = d2 * Float((byteAt(ql, l) >> 4) + h) - min2
            }
            y += 64
            ql += 32
            u1 <<= 2
            u2 <<= 2
        }
    }
}

// Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d} = 210 bytes; x = d·scale·(q − 32).
func dequantizeQ6_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 210
        var y = dst + b * 256
        let d = halfAt(x, 208)
        var ql = x, qh = x + 128, sc = x + 192
        for _ in 0..<2 {
            for l in 0..<32 {
                let s = l / 16
                let lo0 = byteAt(ql, l), lo1 = byteAt(ql, l + 32), hi = byteAt(qh, l)
                let q1 = Int32((lo0 & 0xF) | ((hi & 3) << 4)) - 32
                let q2 = Int32((lo1 & 0xF) | (((hi >> 2) & 3) << 4)) - 32
                let q3 = Int32((lo0 >> 4) | (((hi >> 4) & 3) << 4)) - 32
                let q4 = Int32((lo1 >> 4) | (((hi >> 6) & 3) << 4)) - 32
                y[l] = d * Float(sc.load(fromByteOffset: s, as: Int8.self)) * Float(q1)
                y[l + 32] = d * Float(sc.load(fromByteOffset: s + 2, as: Int8.self)) * Float(q2)
                y[l + 64] = d * Float(sc.load(fromByteOffset: s + 4, as: Int8.self)) * Float(q3)
                y[l + 96] = d * Float(sc.load(fromByteOffset: s + 6, as: Int8.self)) * Float(q4)
            }
            y += 128
            ql += 64
            qh += 32
            sc += 8
        }
    }
}

// Q8_K: {f32 d; i8 qs[256]; i16 bsums[16]} = 292 bytes; x = d·q.
func dequantizeQ8_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 292, y = dst + b * 256
        let d = Float(bitPattern: UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        for j in 0..<256 { y[j] = d * Float(x.load(fromByteOffset: 4 + j, as: Int8.self)) }
    }
}
