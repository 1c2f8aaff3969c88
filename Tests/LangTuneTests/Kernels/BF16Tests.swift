import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// bfloat16 products (`--dtype bf16`): the conversion rounds exactly like PyTorch (nearest even) on
/// every path, and the bf16 GEMMs equal float64 products of the bf16-rounded operands up to float32
/// accumulation (1e-5 relative), forward and for the input gradient, dense and tiled.
final class BF16Tests: XCTestCase {
    func testConversionRoundsToNearestEvenOnEveryPath() {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        var x: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, Float(bitPattern: 0x7F80_0001), Float.leastNonzeroMagnitude,
                          -Float.leastNormalMagnitude, Float.greatestFiniteMagnitude,
                          Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_7FFF)]
        x += (0..<1000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        let want = x.map { BFloat16Bits.fromFloat($0) }
        for simd in [1, 0] {
            lt_set_simd_enabled(Int32(simd))
            var got = [UInt16](repeating: 0, count: x.count)
            lt_f32_to_bf16(x, &got, Int64(x.count))
            XCTAssertEqual(got, want, "simd \(simd)")
        }
        lt_set_simd_enabled(1)
        var back = [Float](repeating: 0, count: x.count)
        lt_bf16_to_f32(want, &back, Int64(x.count))
        for (b, w) in zip(back, want) { XCTAssertEqual(b.bitPattern, UInt32(w) << 16) }
    }

    func rounded(_ v: [Float]) -> [Double] { v.map { Double(BFloat16Bits.toFloat(BFloat16Bits.fromFloat($0))) } }

    func testProductsEqualFloat64OfRoundedOperands() throws {
        guard lt_bf16_gemm_available() != 0 else { throw XCTSkip("no bf16 GEMM here (oneDNN + AVX512-BF16/AMX needed)") }
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000) & 0xFFFF_FFFF)
        let backend = CPUBackend(threads: Threads(2), bf16: true)
        let rows = 7, out = 300, inF = 520
        let values = (0..<(out * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) * 0.05 }
        let dense = LinearWeight(out: out, in: inF, values: values)
        dense.prepareBF16()
        let nf4 = LinearWeight(nf4: NF4Tensor.quantize(values, shape: [out, inF]))
        let x = (0..<(rows * inF)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let dy = (0..<(rows * out)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        for (label, w) in [("dense", dense), ("nf4 tiles", nf4)] {
            let wr = rounded(w.floatValues()), xr = rounded(x), dyr = rounded(dy)
            var y = [Float](repeating: 0, count: rows * out)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { backend.linear(w, x: xp.baseAddress!, rows: rows, y: $0.baseAddress!) } }
            var worst = 0.0, scale = 0.0
            for r in 0..<rows { for j in 0..<out {
                var s = 0.0
                for k in 0..<inF { s += xr[r * inF + k] * wr[j * inF + k] }
                worst = max(worst, abs(Double(y[r * out + j]) - s)); scale = max(scale, abs(s))
            } }
            XCTAssertLessThan(worst / scale, 1e-5, "\(label) forward")

            // dx = dy · W, the product the training graph's backward pass uses.
            var dx = [Float](repeating: 0, count: rows * inF)
            dy.withUnsafeBufferPointer { d in dx.withUnsafeMutableBufferPointer {
                backend.linearBackwardInput(w, dy: d.baseAddress!, rows: rows, dx: $0.baseAddress!, accumulate: false)
            } }
            worst = 0; scale = 0
            for r in 0..<rows { for k in 0..<inF {
                var s = 0.0
                for j in 0..<out { s += dyr[r * out + j] * wr[j * inF + k] }
                worst = max(worst, abs(Double(dx[r * inF + k]) - s)); scale = max(scale, abs(s))
            } }
            XCTAssertLessThan(worst / scale, 1e-5, "\(label) backward")
        }
    }
}
