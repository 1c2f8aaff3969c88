import CLangTuneKernels

extension LoRAWeights {
    /// `y[rows, out] += scale · (x Aᵀ) Bᵀ`, with `t[rows, r]` receiving `x Aᵀ` (kept for backward).
    func addForward(x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>, scale: Float,
                    t: UnsafeMutablePointer<Float>) {
        lt_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), Int64(rows), Int64(rank), Int64(inFeatures), 1,
                 x, Int64(inFeatures), a.pointer, Int64(inFeatures), 0, t, Int64(rank))
        lt_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), Int64(rows), Int64(outFeatures), Int64(rank), scale,
                 t, Int64(rank), b.pointer, Int64(rank), 1, y, Int64(outFeatures))
    }

    /// Inference form of `addForward` with its own scratch.
    func add(x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>, scale: Float) {
        let t = FloatBuffer(count: rows * rank, zeroed: false)
        addForward(x: x, rows: rows, y: y, scale: scale, t: t.pointer)
    }
}
