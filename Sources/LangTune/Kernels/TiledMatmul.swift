import CLangTuneKernels
import Foundation

/// Matrix products with a weight that has no float32 copy (NF4, or a GGUF's own blocks): the
/// weight is dequantized one tile of output rows at a time into a float32 buffer of about 2 MB
/// (threads split the tile), which the GEMM then reads; the whole float32 matrix never exists.
extension LinearWeight {
    /// Output rows per tile for an input width of `k`.
    static func tileRows(out: Int, k: Int) -> Int { max(8, min(out, (512 * 1024) / max(k, 1))) }

    private func withTiles(threads: Threads, scratch: ScratchCache?, _ body: (_ j0: Int, _ rows: Int, _ tile: UnsafePointer<Float>) -> Void) {
        let k = inFeatures
        let tileRows = Self.tileRows(out: outFeatures, k: k)
        func run(_ buf: UnsafeMutablePointer<Float>) {
            var j0 = 0
            while j0 < outFeatures {
                let tr = min(tileRows, outFeatures - j0)
                let base = j0
                threads.parallelFor(tr, grain: max(1, 16_384 / k)) { s, e in
                    self.dequantizeRows(base + s, base + e, into: buf + s * k)
                }
                body(j0, tr, buf)
                j0 += tr
            }
        }
        if let scratch { return scratch.withFloats(tileRows * k, run) }
        let buf = FloatBuffer(count: tileRows * k, zeroed: false)
        run(buf.pointer)
    }

    /// `body` with a bf16 buffer of `count` values: the cache's, or a fresh one.
    private func withBF16(_ count: Int, _ scratch: ScratchCache?, _ body: (UnsafeMutablePointer<UInt16>) -> Void) {
        if let scratch { return scratch.withBF16(count, body) }
        let b = BF16Buffer(count: count)
        body(b.pointer)
    }

    /// `body(input as bf16, j0, rows, tile as bf16)` for each tile of rows: the `count` input values are
    /// rounded to bf16 once, each dequantized tile as it comes.
    private func withBF16Tiles(_ input: UnsafePointer<Float>, count: Int, threads: Threads, scratch: ScratchCache?,
                               _ body: (UnsafePointer<UInt16>, Int, Int, UnsafePointer<UInt16>) -> Void) {
        let k = inFeatures
        withBF16(count, scratch) { ib in
            withBF16(Self.tileRows(out: outFeatures, k: k) * k, scratch) { tb in
                lt_f32_to_bf16(input, ib, Int64(count))
                withTiles(threads: threads, scratch: scratch) { j0, tr, tile in
                    lt_f32_to_bf16(tile, tb, Int64(tr * k))
                    body(ib, j0, tr, tb)
                }
            }
        }
    }

    /// y[rows, out] = x[rows, in] · Wᵀ (no bias); with `bf16`, x and each tile are rounded to bfloat16.
    func tiledForward(x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>, threads: Threads, bf16: Bool = false,
                      scratch: ScratchCache? = nil) {
        let k = inFeatures, n = outFeatures
        let n_ = CChar(UInt8(ascii: "N")), t_ = CChar(UInt8(ascii: "T"))
        if bf16 {
            return withBF16Tiles(x, count: rows * k, threads: threads, scratch: scratch) { xb, j0, tr, tb in
                BF16GEMM.run(transposedB: true, m: rows, n: tr, k: k, a: xb, lda: k, b: tb, ldb: k, beta: 0, c: y + j0, ldc: n,
                             threads: threads)
            }
        }
        withTiles(threads: threads, scratch: scratch) { j0, tr, tile in
            lt_sgemm(n_, t_, Int64(rows), Int64(tr), Int64(k), 1, x, Int64(k), tile, Int64(k), 0, y + j0, Int64(n))
        }
    }

    /// dx[rows, in] (+)= dy[rows, out] · W; with `bf16`, dy and each tile are rounded to bfloat16.
    func tiledBackwardInput(dy: UnsafePointer<Float>, rows: Int, dx: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Threads,
                            bf16: Bool = false, scratch: ScratchCache? = nil) {
        let k = inFeatures, n = outFeatures
        let n_ = CChar(UInt8(ascii: "N"))
        var first = true
        if bf16 {
            return withBF16Tiles(dy, count: rows * n, threads: threads, scratch: scratch) { db, j0, tr, tb in
                BF16GEMM.run(transposedB: false, m: rows, n: k, k: tr, a: db + j0, lda: n, b: tb, ldb: k,
                             beta: (accumulate || !first) ? 1 : 0, c: dx, ldc: k, threads: threads)
                first = false
            }
        }
        withTiles(threads: threads, scratch: scratch) { j0, tr, tile in
            lt_sgemm(n_, n_, Int64(rows), Int64(k), Int64(tr), 1,
                     dy + j0, Int64(n), tile, Int64(k), (accumulate || !first) ? 1 : 0, dx, Int64(k))
            first = false
        }
    }
}
