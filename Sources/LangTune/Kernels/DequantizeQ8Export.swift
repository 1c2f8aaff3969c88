/// Quantizes `count` floats (a multiple of 32) into Q8_0 blocks at `dst`
/// (`count / 32 * 34` bytes), exactly as ggml's reference quantizer does:
/// d = amax / 127 stored as f16, q = roundf(x · (1/d)) (ties away from zero),
/// with the reciprocal taken of the float32 d before it is rounded to f16.
///
/// ggml leaves non-finite inputs undefined; here a NaN quantizes to 0 and
/// the codes are clamped to [-127, 127] so the result is always a valid block.
public func quantizeRowQ8_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
    precondition(count % 32 == 0, "Q8_0 rows hold whole blocks of 32")
    for b in 0..<(count / 32) {
        let x = src + b * 32
        let out = dst + b * 34
        var amax: Float = 0
        for j in 0..<32 {
            let a = abs(x[j])
            if a > amax { amax = a }
        }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        out.storeBytes(of: Float16Bits.fromFloat(d).littleEndian, toByteOffset: 0, as: UInt16.self)
        for j in 0..<32 {
            var q = (x[j] * id).rounded(.toNearestOrAwayFromZero)
            if !(q >= -127) { q = q.isNaN ? 0 : -127 }
            if q > 127 { q = 127 }
            out.storeBytes(of: Int8(q), toByteOffset: 2 + j, as: Int8.self)
        }
    }
}

/// Q8_0 blocks for `values` (count must be a multiple of 32).
public func quantizeQ8_0(_ values: [Float]) -> [UInt8] {
    precondition(values.count % 32 == 0, "Q8_0 rows hold whole blocks of 32")
    var out = [UInt8](repeating: 0, count: values.count / 32 * 34)
    values.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBytes { dst in
            if let s = src.baseAddress, let d = dst.baseAddress { quantizeRowQ8_0(s, d, count: values.count) }
        }
    }
    return out
}
