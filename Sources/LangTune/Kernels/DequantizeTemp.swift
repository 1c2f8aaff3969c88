// TEMPORARY until the formats branch lands (it owns dequantize).
import CLangTuneKernels
public func dequantize(_ t: WeightTensor) throws -> [Float] {
    let n = t.elementCount
    var out = [Float](repeating: 0, count: n)
    let p = t.bytes.baseAddress!
    switch t.dtype {
    case .f32: for i in 0..<n { out[i] = p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
    case .f16: for i in 0..<n { out[i] = lt_f16_to_f32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .q8_0:
        for b in 0..<(n / 32) {
            let d = lt_f16_to_f32(p.loadUnaligned(fromByteOffset: 34 * b, as: UInt16.self))
            for j in 0..<32 { out[b * 32 + j] = d * Float(p.load(fromByteOffset: 34 * b + 2 + j, as: Int8.self)) }
        }
    case .q4_1:
        for b in 0..<(n / 32) {
            let d = lt_f16_to_f32(p.loadUnaligned(fromByteOffset: 20 * b, as: UInt16.self))
            let m = lt_f16_to_f32(p.loadUnaligned(fromByteOffset: 20 * b + 2, as: UInt16.self))
            for j in 0..<16 {
                let q = p.load(fromByteOffset: 20 * b + 4 + j, as: UInt8.self)
                out[b * 32 + j] = Float(q & 15) * d + m
                out[b * 32 + j + 16] = Float(q >> 4) * d + m
            }
        }
    default: throw FormatError(file: t.name, "dtype \(t.dtype) not supported yet")
    }
    return out
}
