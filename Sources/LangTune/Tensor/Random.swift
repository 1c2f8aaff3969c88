/// SplitMix64: a small, seedable generator whose whole state is one UInt64,
/// so runs are reproducible and resumable (the state can be checkpointed).
public struct SplitMix64: RandomNumberGenerator, Sendable, Codable, Equatable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 24 random bits (exact in Float).
    public mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) / Double(UInt64(1) << 53) }
}
