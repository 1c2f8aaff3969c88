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

// Q4_K, Q5_K and Q6_K (and Q5_0) are decoded in C (lt_dequantize_*, kquants.h), where the
// matrix-vector kernels that read those blocks unpack them the same way.

// Q8_K: {f32 d; i8 qs[256]; i16 bsums[16]} = 292 bytes; x = d·q.
func dequantizeQ8_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 292, y = dst + b * 256
        let d = Float(bitPattern: UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        for j in 0..<256 { y[j] = d * Float(x.load(fromByteOffset: 4 + j, as: Int8.self)) }
    }
}
