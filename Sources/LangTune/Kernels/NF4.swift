import CLangTuneKernels
import Foundation

/// bitsandbytes' tables.
public enum BitsAndBytes {
    /// NF4's 16 NormalFloat levels, index = code.
    public static var nf4Code: [Float] { withUnsafeBytes(of: lt_nf4_code) { Array($0.bindMemory(to: Float.self)) } }

    /// `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`: the 8-bit map that
    /// double quantization codes absmax values with. The values are bitsandbytes 0.50's, copied as
    /// constants (the float32 rounding of its linspace/scale steps is not worth re-deriving);
    /// `NF4Tests` checks them against `Tests/Fixtures/nf4.json`.
    public static let dynamicMap: [Float] = [
        -0.992968738079071, -0.9789062738418579, -0.96484375, -0.9507812261581421, -0.936718761920929, -0.922656238079071,
        -0.9085937738418579, -0.89453125, -0.8804687261581421, -0.866406261920929, -0.852343738079071, -0.8382812738418579,
        -0.82421875, -0.8101562261581421, -0.796093761920929, -0.782031238079071, -0.7679687738418579, -0.75390625,
        -0.7398437261581421, -0.725781261920929, -0.7117187976837158, -0.6976562738418579, -0.68359375, -0.6695312261581421,
        -0.655468761920929, -0.6414062976837158, -0.6273437738418579, -0.61328125, -0.5992187261581421, -0.585156261920929,
        -0.5710937976837158, -0.5570312738418579, -0.54296875, -0.5289062261581421, -0.5148437023162842, -0.500781238079071,
        -0.48671871423721313, -0.47265625, -0.4585937261581421, -0.44453126192092896, -0.43046873807907104, -0.4164062440395355,
        -0.40234375, -0.3882812261581421, -0.37421876192092896, -0.36015623807907104, -0.3460937440395355, -0.33203125,
        -0.3179687261581421, -0.30390626192092896, -0.28984373807907104, -0.2757812738418579, -0.26171875, -0.24765624105930328,
        -0.23359374701976776, -0.21953125298023224, -0.20546874403953552, -0.19140625, -0.17734375596046448, -0.16328124701976776,
        -0.14921875298023224, -0.13515624403953552, -0.12109375, -0.10703125596046448, -0.09859374910593033, -0.09578125923871994,
        -0.09296875447034836, -0.09015624970197678, -0.08734375238418579, -0.08453124761581421, -0.08171875774860382, -0.07890625298023224,
        -0.07609374821186066, -0.07328125089406967, -0.07046874612569809, -0.0676562562584877, -0.06484375149011612, -0.062031250447034836,
        -0.05921875312924385, -0.05640624836087227, -0.053593751043081284, -0.05078125, -0.047968748956918716, -0.04515625163912773,
        -0.04234374687075615, -0.039531249552965164, -0.03671875223517418, -0.033906251192092896, -0.031093750149011612, -0.028281250968575478,
        -0.025468749925494194, -0.02265625074505806, -0.019843751564621925, -0.017031250521540642, -0.014218750409781933, -0.011406250298023224,
        -0.009718749672174454, -0.009156249463558197, -0.008593750186264515, -0.008031249977648258, -0.0074687497690320015, -0.006906250026077032,
        -0.006343749817460775, -0.005781250074505806, -0.0052187503315508366, -0.0046562496572732925, -0.004093749914318323, -0.0035312497057020664,
        -0.002968749962747097, -0.002406249986961484, -0.001843750011175871, -0.001281249918974936, -0.0009437500848434865, -0.0008312499849125743,
        -0.0007187500596046448, -0.0006062500760890543, -0.000493750034365803, -0.0003812500217463821, -0.0002687500382307917, -0.00015625001105945557,
        -8.874999912222847e-05, -6.625000241911039e-05, -4.374999844003469e-05, -2.1249998098937795e-05, -7.749999895168003e-06, -3.250000190746505e-06,
        -5.500000384017767e-07, 0.0, 5.500000384017767e-07, 3.250000190746505e-06, 7.749999895168003e-06, 2.1249998098937795e-05,
        4.374999844003469e-05, 6.625000241911039e-05, 8.874999912222847e-05, 0.00015625001105945557, 0.0002687500382307917, 0.0003812500217463821,
        0.000493750034365803, 0.0006062500760890543, 0.0007187500596046448, 0.0008312499849125743, 0.0009437500848434865, 0.001281249918974936,
        0.001843750011175871, 0.002406249986961484, 0.002968749962747097, 0.0035312497057020664, 0.004093749914318323, 0.0046562496572732925,
        0.0052187503315508366, 0.005781250074505806, 0.006343749817460775, 0.006906250026077032, 0.0074687497690320015, 0.008031249977648258,
        0.008593750186264515, 0.009156249463558197, 0.009718749672174454, 0.011406250298023224, 0.014218750409781933, 0.017031250521540642,
        0.019843751564621925, 0.02265625074505806, 0.025468749925494194, 0.028281250968575478, 0.031093750149011612, 0.033906251192092896,
        0.03671875223517418, 0.039531249552965164, 0.04234374687075615, 0.04515625163912773, 0.047968748956918716, 0.05078125,
        0.053593751043081284, 0.05640624836087227, 0.05921875312924385, 0.062031250447034836, 0.06484375149011612, 0.0676562562584877,
        0.07046874612569809, 0.07328125089406967, 0.07609374821186066, 0.07890625298023224, 0.08171875774860382, 0.08453124761581421,
        0.08734375238418579, 0.09015624970197678, 0.09296875447034836, 0.09578125923871994, 0.09859374910593033, 0.10703125596046448,
        0.12109375, 0.13515624403953552, 0.14921875298023224, 0.16328124701976776, 0.17734375596046448, 0.19140625,
        0.20546874403953552, 0.21953125298023224, 0.23359374701976776, 0.24765624105930328, 0.26171875, 0.2757812738418579,
        0.28984373807907104, 0.30390626192092896, 0.3179687261581421, 0.33203125, 0.3460937440395355, 0.36015623807907104,
        0.37421876192092896, 0.3882812261581421, 0.40234375, 0.4164062440395355, 0.43046873807907104, 0.44453126192092896,
        0.4585937261581421, 0.47265625, 0.48671871423721313, 0.500781238079071, 0.5148437023162842, 0.5289062261581421,
        0.54296875, 0.5570312738418579, 0.5710937976837158, 0.585156261920929, 0.5992187261581421, 0.61328125,
        0.6273437738418579, 0.6414062976837158, 0.655468761920929, 0.6695312261581421, 0.68359375, 0.6976562738418579,
        0.7117187976837158, 0.725781261920929, 0.7398437261581421, 0.75390625, 0.7679687738418579, 0.782031238079071,
        0.796093761920929, 0.8101562261581421, 0.82421875, 0.8382812738418579, 0.852343738079071, 0.866406261920929,
        0.8804687261581421, 0.89453125, 0.9085937738418579, 0.922656238079071, 0.936718761920929, 0.9507812261581421,
        0.96484375, 0.9789062738418579, 0.992968738079071, 1.0,
    ]
}

/// A weight quantized to NF4 the way bitsandbytes does it (`quantize_4bit(..., quant_type="nf4")`):
/// blocks of 64 consecutive values of the row-major tensor, each scaled by its absolute maximum,
/// two 4-bit codes per byte (first value in the high nibble). With double quantization the
/// float32 absmax values have their mean subtracted and are coded to 8 bits in blocks of 256
/// with `BitsAndBytes.dynamicMap`, one float32 scale per 256 blocks.
public struct NF4Tensor: Sendable {
    public let shape: [Int]
    public let blocksize: Int
    /// `(count + 1) / 2` bytes.
    public let packed: [UInt8]
    public let scales: Scales

    public enum Scales: Sendable, Equatable {
        /// One float32 absmax per block.
        case plain([Float])
        /// Double quantization: per block an 8-bit code into `dynamicMap`, per `nestedBlocksize`
        /// blocks one float32 absmax, and the subtracted mean.
        case double(codes: [UInt8], nestedAbsmax: [Float], offset: Float, nestedBlocksize: Int)
    }

    public var count: Int { shape.reduce(1, *) }
    public var blockCount: Int { (count + blocksize - 1) / blocksize }
    public var doubleQuantized: Bool { if case .double = scales { return true } else { return false } }

    /// Bytes held: codes plus scales.
    public var byteCount: Int {
        switch scales {
        case .plain(let a): return packed.count + 4 * a.count
        case .double(let c, let n, _, _): return packed.count + c.count + 4 * n.count + 4
        }
    }

    public init(shape: [Int], blocksize: Int, packed: [UInt8], scales: Scales) {
        self.shape = shape
        self.blocksize = blocksize
        self.packed = packed
        self.scales = scales
    }

    /// Quantizes `values` (row-major, `shape`); with `threads`, blocks are split across them (the
    /// codes do not depend on the split: every block is quantized on its own).
    public static func quantize(_ values: UnsafeBufferPointer<Float>, shape: [Int], blocksize: Int = 64,
                                doubleQuant: Bool = true, nestedBlocksize: Int = 256, threads: Threads? = nil) -> NF4Tensor {
        let n = values.count
        precondition(n == shape.reduce(1, *) && n > 0)
        let blocks = (n + blocksize - 1) / blocksize
        var packed = [UInt8](repeating: 0, count: (n + 1) / 2)
        var absmax = [Float](repeating: 0, count: blocks)
        if let threads, threads.count > 1, blocksize % 2 == 0 {
            packed.withUnsafeMutableBufferPointer { pk in
                absmax.withUnsafeMutableBufferPointer { am in
                    let x = values.baseAddress!, p = pk.baseAddress!, a = am.baseAddress!
                    threads.parallelFor(blocks, grain: 256) { b0, b1 in
                        let start = b0 * blocksize, end = min(n, b1 * blocksize)
                        lt_nf4_quantize(x + start, Int64(end - start), Int64(blocksize), p + start / 2, a + b0)
                    }
                }
            }
        } else {
            lt_nf4_quantize(values.baseAddress!, Int64(n), Int64(blocksize), &packed, &absmax)
        }
        guard doubleQuant else { return NF4Tensor(shape: shape, blocksize: blocksize, packed: packed, scales: .plain(absmax)) }
        // torch's float32 mean of the absmax values; summed in Double and rounded once.
        let offset = Float(absmax.reduce(0.0) { $0 + Double($1) } / Double(blocks))
        let centred = absmax.map { $0 - offset }
        var codes = [UInt8](repeating: 0, count: blocks)
        var nested = [Float](repeating: 0, count: (blocks + nestedBlocksize - 1) / nestedBlocksize)
        dynamicMapPointer { map in lt_blockwise8_quantize(centred, Int64(blocks), Int64(nestedBlocksize), map, &codes, &nested) }
        return NF4Tensor(shape: shape, blocksize: blocksize, packed: packed,
                         scales: .double(codes: codes, nestedAbsmax: nested, offset: offset, nestedBlocksize: nestedBlocksize))
    }

    public static func quantize(_ values: [Float], shape: [Int], blocksize: Int = 64, doubleQuant: Bool = true,
                                threads: Threads? = nil) -> NF4Tensor {
        values.withUnsafeBufferPointer { quantize($0, shape: shape, blocksize: blocksize, doubleQuant: doubleQuant, threads: threads) }
    }

    static func dynamicMapPointer<R>(_ body: (UnsafePointer<Float>) -> R) -> R {
        BitsAndBytes.dynamicMap.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// The scale of blocks [b0, b1), as the dequantizer uses them.
    public func blockScales(_ b0: Int, _ b1: Int, into out: UnsafeMutablePointer<Float>) {
        switch scales {
        case .plain(let a):
            a.withUnsafeBufferPointer { lt_nf4_block_scales($0.baseAddress!, nil, nil, nil, 0, 1, Int64(b0), Int64(b1), out) }
        case .double(let codes, let nested, let offset, let nb):
            codes.withUnsafeBufferPointer { c in
                nested.withUnsafeBufferPointer { ns in
                    Self.dynamicMapPointer { map in
                        lt_nf4_block_scales(nil, c.baseAddress!, ns.baseAddress!, map, offset, Int64(nb), Int64(b0), Int64(b1), out)
                    }
                }
            }
        }
    }

    /// All block scales (absmax, after undoing double quantization).
    public var absmax: [Float] {
        var out = [Float](repeating: 0, count: blockCount)
        out.withUnsafeMutableBufferPointer { blockScales(0, blockCount, into: $0.baseAddress!) }
        return out
    }

    /// Values [start, end) of the flattened tensor into `out`.
    public func dequantize(_ start: Int, _ end: Int, into out: UnsafeMutablePointer<Float>) {
        guard end > start else { return }
        let b0 = start / blocksize, b1 = (end - 1) / blocksize + 1
        var s = [Float](repeating: 0, count: b1 - b0)
        s.withUnsafeMutableBufferPointer { blockScales(b0, b1, into: $0.baseAddress!) }
        packed.withUnsafeBufferPointer { p in
            s.withUnsafeBufferPointer { lt_nf4_dequantize(p.baseAddress!, $0.baseAddress!, Int64(blocksize), Int64(start), Int64(end), out) }
        }
    }

    /// The whole tensor as float32.
    public func dequantize() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { dequantize(0, count, into: $0.baseAddress!) }
        return out
    }
}
