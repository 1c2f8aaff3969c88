import CLangTuneKernels

/// Decodes `count` elements of type `type` starting at `src` into floats at `dst`.
///
/// `count` must be a whole number of blocks (`type.blockSize`), and `src` must
/// hold `type.byteCount(elements: count)` bytes; `src` needs no alignment.
/// Block layouts and arithmetic follow ggml (`ggml-common.h`, `ggml-quants.c`)
/// operation for operation, so results equal ggml's and gguf-py's bit for bit.
/// Integer and f64 types convert value by value (for inspection and tests).
public func dequantizeRow(_ type: DType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    precondition(count >= 0 && count % type.blockSize == 0, "dequantizeRow: \(count) is not a whole number of \(type) blocks")
    let blocks = count / type.blockSize
    switch type {
    case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .f16: for i in 0..<count { dst[i] = Float16Bits.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .bf16: lt_bf16_to_f32(src, dst, Int64(count))
    case .f64: for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
    case .i8: for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
    case .u8, .bool: for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
    case .i16: for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
    case .i32: for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
    case .i64: for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
    case .q4_0: lt_dequantize_q4(src, dst, Int64(blocks), 0)
    case .q4_1: lt_dequantize_q4(src, dst, Int64(blocks), 1)
    case .q5_0: lt_dequantize_q5_0(src, dst, Int64(blocks))
    case .q5_1: dequantizeQ5_1(src, dst, blocks: blocks)
    case .q8_0: lt_dequantize_q8_0(src, dst, Int64(blocks))
    case .q8_1: dequantizeQ8_1(src, dst, blocks: blocks)
    case .q2_K: dequantizeQ2_K(src, dst, blocks: blocks)
    case .q3_K: dequantizeQ3_K(src, dst, blocks: blocks)
    case .q4_K: lt_dequantize_q4_k(src, dst, Int64(blocks))
    case .q5_K: lt_dequantize_q5_k(src, dst, Int64(blocks))
    case .q6_K: lt_dequantize_q6_k(src, dst, Int64(blocks))
    case .q8_K: dequantizeQ8_K(src, dst, blocks: blocks)
    }
}

/// All elements of `t` as floats, in row-major order of `t.shape`.
///
/// Checks the tensor's own description first (shape, byte count, bounds
/// within its storage), since a `WeightTensor` can be built by anyone.
public func dequantize(_ t: WeightTensor) throws -> [Float] {
    var n = 1
    for d in t.shape {
        let (p, over) = n.multipliedReportingOverflow(by: d)
        guard d >= 0, !over else { throw FormatError(file: t.name, "invalid shape \(t.shape)") }
        n = p
    }
    guard t.cols % t.dtype.blockSize == 0 || n == 0 else {
        throw FormatError(file: t.name, "rows of \(t.cols) elements are not whole \(t.dtype) blocks of \(t.dtype.blockSize)")
    }
    guard let bytes = t.dtype.byteCount(elements: n), bytes == t.byteCount else {
        throw FormatError(file: t.name, "\(t.byteCount) bytes do not hold \(n) \(t.dtype) elements")
    }
    guard t.offset >= 0, t.offset <= t.storage.count, bytes <= t.storage.count - t.offset else {
        throw FormatError(file: t.name, "bytes \(t.offset)..<\(t.offset + bytes) lie outside its storage of \(t.storage.count) bytes")
    }
    return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
        if let dst = buffer.baseAddress, n > 0 { dequantizeRow(t.dtype, t.storage.base + t.offset, dst, count: n) }
        initialized = n
    }
}

@inline(__always)
func halfAt(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float16Bits.toFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

@inline(__always)
func byteAt(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 { p.load(fromByteOffset: offset, as: UInt8.self) }



// Q5_1: {f16 d; f16 m; u32 qh; u8 qs[16]}, x = q·d + m.
func dequantizeQ5_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 24, y = dst + b * 32
        let d = halfAt(x, 0), m = halfAt(x, 2)
        let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<16 {
            let q = UInt32(byteAt(x, 8 + j))
            let h0 = ((qh >> UInt32(j)) << 4) & 0x10
            let h1 = (qh >> UInt32(j + 12)) & 0x10
            y[j] = Float((q & 0xF) | h0) * d + m
            y[j + 16] = Float((q >> 4) | h1) * d + m
        }
    }
}


// Q8_1: {f16 d; f16 s; i8 qs[32]} (s, the sum, is not needed), x = q·d.
func dequantizeQ8_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
        let x = src + b * 36, y = dst + b * 32
        let d = halfAt(x, 0)
        for j in 0..<32 { y[j] = Float(x.load(fromByteOffset: 4 + j, as: Int8.self)) * d }
    }
}
