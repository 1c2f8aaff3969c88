/// IEEE half-precision bit patterns ↔ Float, written out in integer
/// arithmetic so they behave the same on every platform (Swift's `Float16`
/// is missing on macOS x86-64) and compile without branches.
public enum Float16Bits {
    /// The exact Float value of a half-precision bit pattern (NaN payloads kept).
    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float {
        // Same construction as ggml's portable fp16 → fp32: normal numbers by
        // re-biasing the exponent with one multiply, subnormals via a magic bias.
        let w = UInt32(h) << 16
        let sign = w & 0x8000_0000
        let twoW = w &+ w
        let normalized = Float(bitPattern: (twoW >> 4) &+ (0xE0 << 23)) * 0x1.0p-112
        let denormalized = Float(bitPattern: (twoW >> 17) | (126 << 23)) - 0.5
        let bits = twoW < (1 << 27) ? denormalized.bitPattern : normalized.bitPattern
        return Float(bitPattern: sign | bits)
    }

    /// Rounds `x` to the nearest half-precision value, ties to even (as ggml
    /// and IEEE conversions do). Overflow gives ±infinity, NaN a quiet NaN.
    @inline(__always)
    public static func fromFloat(_ x: Float) -> UInt16 {
        // ggml's portable fp32 → fp16: scaling by 2^112 then 2^-110 lets the
        // FPU do the round-to-nearest-even on the mantissa for us.
        var base = (abs(x) * 0x1.0p+112) * 0x1.0p-110
        let w = x.bitPattern
        let shl1W = w &+ w
        let sign = w & 0x8000_0000
        var bias = shl1W & 0xFF00_0000
        if bias < 0x7100_0000 { bias = 0x7100_0000 }
        base = Float(bitPattern: (bias >> 1) &+ 0x0780_0000) + base
        let bits = base.bitPattern
        let expBits = (bits >> 13) & 0x0000_7C00
        let mantissaBits = bits & 0x0000_0FFF
        let nonsign = expBits &+ mantissaBits
        return UInt16(truncatingIfNeeded: (sign >> 16) | (shl1W > 0xFF00_0000 ? 0x7E00 : nonsign))
    }
}

/// bfloat16 bit patterns ↔ Float.
public enum BFloat16Bits {
    /// The exact Float value of a bfloat16 bit pattern.
    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Rounds `x` to bfloat16, ties to even; NaN stays a (quiet) NaN.
    /// Matches gguf-py's and PyTorch's float32 → bfloat16 conversion.
    @inline(__always)
    public static func fromFloat(_ x: Float) -> UInt16 {
        let n = x.bitPattern
        if n & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (n | 0x0040_0000) >> 16) }
        let rounded = UInt64(n) + 0x7FFF + UInt64((n >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }
}

/// Converts `count` floats to half precision (round to nearest even), e.g. for GGUF export.
public func convertRowF32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count { dst[i] = Float16Bits.fromFloat(src[i]) }
}

/// Converts `count` floats to bfloat16 (round to nearest even).
public func convertRowF32ToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count { dst[i] = BFloat16Bits.fromFloat(src[i]) }
}
