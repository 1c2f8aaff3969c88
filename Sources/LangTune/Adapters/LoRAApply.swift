import CLangTuneKernels

/// LoRA's rank-r products, forward and backward, on `ltt_combine` (a register-blocked float32 kernel):
/// one operand has only r rows or columns, a shape where a general GEMM spends its time packing
/// and dispatching (oneDNN's sgemm took a fifth of a bf16 training step on them). Float32
/// throughout: the adapter's parameters and their gradients stay full precision in every `--dtype`.
extension LoRAWeights {
    /// Floats of scratch `addForward` needs (the transposed A and scaled, transposed B).
    var forwardScratchCount: Int { rank * (inFeatures + outFeatures) }

    /// `y[rows, out] += scale · (x Aᵀ) Bᵀ`, with `t[rows, r]` receiving `x Aᵀ` (kept for backward).
    func addForward(x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>, scale: Float,
                    t: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, threads: Threads) {
        let r = rank, inF = inFeatures, outF = outFeatures
        let at = scratch, bt = scratch + r * inF
        for j in 0..<r { for k in 0..<inF { at[k * r + j] = a.pointer[j * inF + k] } }
        for o in 0..<outF { for j in 0..<r { bt[j * outF + o] = scale * b.pointer[o * r + j] } }
        t.initialize(repeating: 0, count: rows * r)
        threads.parallelFor(rows, grain: 16) { s, e in
            // t = x Aᵀ, then y += t (scale·B)ᵀ, on the same rows.
            ltt_combine(t + s * r, Int64(r), Int64(e - s), x + s * inF, Int64(inF), 1, at, Int64(r), Int64(inF), Int64(r))
            ltt_combine(y + s * outF, Int64(outF), Int64(e - s), t + s * r, Int64(r), 1, bt, Int64(outF), Int64(r), Int64(outF))
        }
    }

    /// Inference form of `addForward`. A few rows (decoding) take rank + out dot products per row straight
    /// from A and B: the transposed copies `addForward` makes would cost more than the products.
    func add(x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>, scale: Float, threads: Threads = Threads(1)) {
        let r = rank, inF = inFeatures, outF = outFeatures
        guard rows >= 16 else {
            var t = [Float](repeating: 0, count: r)
            for i in 0..<rows {
                for j in 0..<r { t[j] = lt_dot_f32(x + i * inF, a.pointer + j * inF, Int64(inF)) }
                t.withUnsafeBufferPointer { tp in
                    let yi = y + i * outF, tb = tp.baseAddress!
                    threads.parallelFor(outF, grain: 4096) { s, e in  // one part below 8192 outputs: no hand-off
                        for o in s..<e { yi[o] += scale * lt_dot_f32(tb, b.pointer + o * r, Int64(r)) }
                    }
                }
            }
            return
        }
        let t = FloatBuffer(count: rows * r, zeroed: false), scratch = FloatBuffer(count: forwardScratchCount, zeroed: false)
        addForward(x: x, rows: rows, y: y, scale: scale, t: t.pointer, scratch: scratch.pointer, threads: threads)
    }

    /// Floats of scratch `backward` needs.
    func backwardScratchCount(rows: Int) -> Int { rows * rank + rank * outFeatures }

    /// The backward of `addForward` given `dy[rows, out]`: `dB += scale · dyᵀ t`, `dA += dtᵀ input` and
    /// `dIn[rows, in] (+)= dt A` with `dt = scale · dy B`. `accumulate` false overwrites `dIn`.
    func backward(dy: UnsafePointer<Float>, t: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int, scale: Float,
                  gradA: UnsafeMutablePointer<Float>, gradB: UnsafeMutablePointer<Float>, dIn: UnsafeMutablePointer<Float>,
                  accumulate: Bool, scratch: UnsafeMutablePointer<Float>, threads: Threads) {
        let r = rank, inF = inFeatures, outF = outFeatures
        let dt = scratch, dbt = scratch + rows * r
        // dBᵀ[r, out] = tᵀ dy, columns split across threads; then dB += scale · (dBᵀ)ᵀ.
        dbt.initialize(repeating: 0, count: r * outF)
        threads.parallelFor(outF, grain: 64) { s, e in
            ltt_combine(dbt + s, Int64(outF), Int64(r), t, 1, Int64(r), dy + s, Int64(outF), Int64(rows), Int64(e - s))
        }
        for o in 0..<outF { for j in 0..<r { gradB[o * r + j] += scale * dbt[j * outF + o] } }
        // dt = scale · dy B
        dt.initialize(repeating: 0, count: rows * r)
        threads.parallelFor(rows, grain: 16) { s, e in
            ltt_combine(dt + s * r, Int64(r), Int64(e - s), dy + s * outF, Int64(outF), 1, b.pointer, Int64(r), Int64(outF), Int64(r))
            for i in (s * r)..<(e * r) { dt[i] *= scale }
        }
        // dA += dtᵀ input (columns split)
        threads.parallelFor(inF, grain: 64) { s, e in
            ltt_combine(gradA + s, Int64(inF), Int64(r), dt, 1, Int64(r), input + s, Int64(inF), Int64(rows), Int64(e - s))
        }
        // dIn (+)= dt A
        threads.parallelFor(rows, grain: 16) { s, e in
            if !accumulate { (dIn + s * inF).initialize(repeating: 0, count: (e - s) * inF) }
            ltt_combine(dIn + s * inF, Int64(inF), Int64(e - s), dt + s * r, Int64(r), 1, a.pointer, Int64(inF), Int64(r), Int64(inF))
        }
    }
}
