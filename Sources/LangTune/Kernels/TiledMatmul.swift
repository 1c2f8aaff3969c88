import CLangTuneKernels
import Foundation

/// Matrix products with a weight that has no float32 copy (NF4, or a GGUF's own blocks): the
/// weight is dequantized one tile of output rows at a time into a float32 buffer of about 2 MB
/// (threads split the tile), which the GEMM then reads; the whole float32 matrix never exists.
extension LinearWeight {
    /// Output rows per tile for an input width of `k`.
    static func tileRows(out: Int, k: Int) -> Int { max(8, min(out, (512 * 1024) / max(k, 1))) }

    private func withTiles(threads: Threads, _ body: (_ j0: Int, _ rows: Int, _ tile: UnsafePointer<Float>) -> Void) {
        let k = inFeatures
        let tileRows = Self.tileRows(out: outFeatures, k: k)
        let buf = FloatBuffer(count: tileRows * k, zeroed: false)
        var j0 = 0
        while j0 < outFeatures {
            let tr = min(tileRows, outFeatures - j0)
            let base = j0
            threads.parallelFor(tr, grain: max(1, 16_384 / k)) { s, e in
                self.dequantizeRows(base + s, base + e, into: buf.pointer + s * k)
            }
            body(j0, tr, buf.pointer)
            j0 += tr
        }
    }

    /// y[rows, out] = x[rows, in] · Wᵀ (no bias).
    func tiledForward(x: UnsafePointer<Float>, rows: Int, y: UnsafeMutablePointer<Float>, threads: Threads) {
        let k = inFeatures, n = outFeatures
        withTiles(threads: threads) { j0, tr, tile in
            lt_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), Int64(rows), Int64(tr), Int64(k), 1,
                     x, Int64(k), tile, Int64(k), 0, y + j0, Int64(n))
        }
    }

    /// dx[rows, in] (+)= dy[rows, out] · W.
    func tiledBackwardInput(dy: UnsafePointer<Float>, rows: Int, dx: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Threads) {
        let k = inFeatures, n = outFeatures
        var first = true
        withTiles(threads: threads) { j0, tr, tile in
            lt_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), Int64(rows), Int64(k), Int64(tr), 1,
                     dy + j0, Int64(n), tile, Int64(k), (accumulate || !first) ? 1 : 0, dx, Int64(k))
            first = false
        }
    }
}
