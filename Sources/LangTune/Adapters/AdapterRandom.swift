extension LoRAAdapter {
    /// Fills every B matrix with seeded uniform values in ±`amplitude` (B starts at
    /// zero in PEFT's initialisation, so a fresh adapter changes nothing; tests and
    /// interop checks need one that does).
    public func randomizeB(seed: UInt64, amplitude: Float) {
        var rng = SplitMix64(seed: seed)
        for layer in layers {
            for t in layer.keys.sorted() {
                let b = layer[t]!.b
                for i in 0..<b.count { b[i] = Float(rng.nextDouble() * 2 - 1) * amplitude }
            }
        }
    }
}
