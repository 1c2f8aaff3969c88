import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// `--dtype bf16` generation: Q4_0/Q4_1/Q8_0 blocks against an input quantized to int8 per block
/// (VNNI). The input rounding is checked on its own (|x − q·d| <= d/2), then the products against
/// float64 on exactly those quantized values (1e-5: only float32 accumulation differs), with block
/// counts odd and even and row counts off the 4-row groups.
final class Int8MatvecTests: XCTestCase {
    func testQuantizedInputProductsEqualFloat64() throws {
        // Restores the tier that was active (LANGTUNE_ISA's, when a whole run is forced onto one).
        let saved = CPUTier.active
        defer { try? saved.activate() }
        var ran = 0
        for tier in CPUTier.runnable {
            try tier.activate()
            guard lt_int8_matvec_available() != 0 else { continue }
            ran += 1
            try quantizedInputProductsEqualFloat64(tier)
        }
        if ran == 0 { throw XCTSkip("no int8 kernels here (AVX512-VNNI, AVX2 or NEON)") }
    }

    func quantizedInputProductsEqualFloat64(_ tier: CPUTier) throws {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        func f16(_ v: Float) -> [UInt8] { let h = lt_f32_to_f16(v); return [UInt8(h & 0xFF), UInt8(h >> 8)] }
        for (k, rows) in [(224, 13), (576, 8), (32, 5)] {
            let nb = k / 32
            let x = (0..<k).map { _ in Float(rng.nextDouble() * 4 - 2) }
            let bytes = Int(lt_quantize_q8_bytes(Int64(k)))
            var q4 = [Int8](repeating: 0, count: bytes), q8 = [UInt8](repeating: 0, count: bytes)
            var d = [Float](repeating: 0, count: nb), sums = d
            lt_quantize_q8(x, Int64(k), &q4, &q8, &d, &sums)
            var qx = [Int](repeating: 0, count: k)
            for b in 0..<nb {
                for j in 0..<32 {
                    let v = Int(q8[b * 32 + j]) - 128
                    qx[b * 32 + j] = v
                    XCTAssertLessThanOrEqual(abs(x[b * 32 + j] - Float(v) * d[b]), d[b] / 2 * 1.0001 + 1e-7)
                    XCTAssertEqual(Int(q4[(b / 2) * 64 + (b % 2) * 16 + (j < 16 ? j : j + 16)]), v, "Q4 layout, block \(b) element \(j)")
                }
                XCTAssertEqual(sums[b], x[(b * 32)..<(b * 32 + 32)].reduce(0, +), accuracy: 1e-4)
            }
            for dtype in [DType.q4_0, .q4_1, .q8_0] {
                // Random blocks: scale, (min), quants; reference from the same bytes.
                var w: [UInt8] = [], want = [Double](repeating: 0, count: rows)
                for r in 0..<rows {
                    for b in 0..<nb {
                        let scale = Float(rng.nextDouble() * 0.1 + 0.01), mn = Float(rng.nextDouble() * 0.2 - 0.1)
                        let ds = Double(lt_f16_to_f32(lt_f32_to_f16(scale)))
                        let dm = Double(lt_f16_to_f32(lt_f32_to_f16(mn)))
                        w += f16(scale)
                        if dtype == .q4_1 { w += f16(mn) }
                        var dot = 0.0
                        if dtype == .q8_0 {
                            for j in 0..<32 {
                                let q = Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127)
                                w.append(UInt8(bitPattern: q))
                                dot += Double(q) * Double(qx[b * 32 + j])
                            }
                            want[r] += ds * Double(d[b]) * dot
                        } else {
                            var qs = [UInt8](repeating: 0, count: 16)
                            for j in 0..<16 {
                                let lo = UInt8(rng.next() % 16), hi = UInt8(rng.next() % 16)
                                qs[j] = lo | (hi << 4)
                                dot += Double(lo) * Double(qx[b * 32 + j]) + Double(hi) * Double(qx[b * 32 + j + 16])
                            }
                            w += qs
                            want[r] += ds * Double(d[b]) * dot
                            want[r] += dtype == .q4_1 ? dm * Double(sums[b]) : -8 * ds * Double(sums[b])
                        }
                    }
                }
                var y = [Float](repeating: .nan, count: rows)
                let rc = w.withUnsafeBytes { wp in
                    dtype == .q8_0 ? lt_matvec_q8_0_int8(wp.baseAddress!, q8, d, &y, Int64(k), 0, Int64(rows))
                        : lt_matvec_q4_int8(wp.baseAddress!, dtype == .q4_1 ? 1 : 0, q4, d, sums, &y, Int64(k), 0, Int64(rows))
                }
                XCTAssertEqual(rc, 0)
                let scale = want.map(abs).max()!
                for r in 0..<rows { XCTAssertEqual(Double(y[r]), want[r], accuracy: 1e-5 * scale + 1e-6, "\(tier) \(dtype) k\(k) row \(r)") }
            }
        }
    }
}
