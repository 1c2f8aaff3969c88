import CLangTuneKernels
import XCTest
@testable import LangTune

/// The K-quant (and Q5_0) matrix-vector kernels against Float64 on every tier, and their wiring: a
/// LinearWeight built from such blocks keeps them, and one-row products read them.
final class KQuantMatvecTests: XCTestCase {
    /// Random blocks: random bytes, then finite f16 scales (and minimum scales) where ggml keeps them.
    private func randomBlocks(_ dtype: DType, blocks: Int, rng: inout GradRNG) -> [UInt8] {
        let bs = dtype.bytesPerBlock
        var out = (0..<(blocks * bs)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func put(_ o: Int, _ v: Float) {
            let h = lt_f32_to_f16(v)
            out[o] = UInt8(h & 0xff)
            out[o + 1] = UInt8(h >> 8)
        }
        for b in 0..<blocks {
            let o = b * bs
            put(dtype == .q6_K ? o + 208 : o, rng.float(0.0005, 0.05))
            if dtype == .q4_K || dtype == .q5_K { put(o + 2, rng.float(0, 0.05)) }
        }
        return out
    }

    private static let types: [(DType, rows: Int, cols: Int)] = [
        (.q4_K, 13, 1024), (.q5_K, 7, 512), (.q6_K, 11, 2048), (.q5_0, 9, 640),
    ]

    private func matvec(_ dtype: DType, _ w: UnsafeRawPointer, _ x: [Float], _ sums: [Float], _ y: inout [Float], cols: Int,
                        rows: Int) {
        let k = Int64(cols), r = Int64(rows)
        switch dtype {
        case .q4_K: lt_matvec_q4_k(w, x, sums, &y, k, 0, r)
        case .q5_K: lt_matvec_q5_k(w, x, sums, &y, k, 0, r)
        case .q6_K: lt_matvec_q6_k(w, x, &y, k, 0, r)
        default: lt_matvec_q5_0(w, x, &y, k, 0, r)
        }
    }

    /// Against Float64 products of the decoded weights (the decoding itself is pinned to gguf-py by
    /// DequantizeTests); tolerance a few ulps of the sum of |w x|.
    func testMatchesFloat64OnEveryTier() {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        for (dtype, rows, cols) in Self.types {
            let w = randomBlocks(dtype, blocks: rows * cols / dtype.blockSize, rng: &rng)
            let x = rng.floats(cols)
            var sums = [Float](repeating: 0, count: cols / 32)
            lt_block_sums(x, &sums, Int64(cols))
            var deq = [Float](repeating: 0, count: rows * cols)
            w.withUnsafeBytes { dequantizeRow(dtype, $0.baseAddress!, &deq, count: rows * cols) }
            var want = [Double](repeating: 0, count: rows), mag = want
            for r in 0..<rows {
                for j in 0..<cols {
                    want[r] += Double(deq[r * cols + j]) * Double(x[j])
                    mag[r] += abs(Double(deq[r * cols + j]) * Double(x[j]))
                }
            }
            forEachKernelPath { path in
                var y = [Float](repeating: .nan, count: rows)
                w.withUnsafeBytes { matvec(dtype, $0.baseAddress!, x, sums, &y, cols: cols, rows: rows) }
                for r in 0..<rows where !(abs(Double(y[r]) - want[r]) <= 1e-5 * mag[r]) {
                    XCTFail("\(dtype) \(path) row \(r): got \(y[r]), want \(want[r]) (seed \(seed))")
                    break
                }
            }
        }
    }

    /// A weight of these blocks keeps them; a one-row product on the quantized backend is the kernel's
    /// (same bits), and close to the float32 product of the decoded copy.
    func testLinearWeightKeepsBlocksAndUsesThem() throws {
        let seed = GradSeed.make()
        var rng = GradRNG(state: seed)
        for (dtype, rows, cols) in Self.types {
            let bytes = randomBlocks(dtype, blocks: rows * cols / dtype.blockSize, rng: &rng)
            let t = bytes.withUnsafeBytes {
                WeightTensor(name: "w", shape: [rows, cols], dtype: dtype, storage: ByteStorage(copying: $0), offset: 0,
                             byteCount: bytes.count)
            }
            let w = try LinearWeight(t)
            XCTAssertEqual(w.blocks?.dtype, dtype)
            let x = rng.floats(cols)
            var sums = [Float](repeating: 0, count: cols / 32)
            lt_block_sums(x, &sums, Int64(cols))
            try CPUTier.forEachRunnable { tier in
                var kernel = [Float](repeating: .nan, count: rows)
                bytes.withUnsafeBytes { matvec(dtype, $0.baseAddress!, x, sums, &kernel, cols: cols, rows: rows) }
                var quantized = [Float](repeating: .nan, count: rows), dense = quantized
                CPUBackend(quantizedMatvec: true).linear(w, x: x, rows: 1, y: &quantized)
                CPUBackend(quantizedMatvec: false).linear(w, x: x, rows: 1, y: &dense)
                XCTAssertEqual(quantized.map(\.bitPattern), kernel.map(\.bitPattern), "\(dtype) \(tier.name) seed \(seed)")
                let scale = dense.map { abs(Double($0)) }.max()!
                for r in 0..<rows {
                    XCTAssertEqual(Double(quantized[r]), Double(dense[r]), accuracy: 1e-5 * scale, "\(dtype) \(tier.name)")
                }
                // blocksOnly (a QLoRA base kept as the file's blocks): one-row products read the blocks too.
                let kept = try LinearWeight(blocksOnly: t)
                var fromBlocks = [Float](repeating: .nan, count: rows)
                CPUBackend(quantizedMatvec: true).linear(kept, x: x, rows: 1, y: &fromBlocks)
                XCTAssertEqual(fromBlocks.map(\.bitPattern), kernel.map(\.bitPattern), "\(dtype) \(tier.name) blocksOnly")
            }
        }
    }
}
