import CLangTuneKernels
import XCTest
@testable import LangTune

/// Every C kernel against a float64 reference on fresh random inputs, on both
/// the SIMD path (where the CPU has it) and the portable path.
final class KernelTests: XCTestCase {
    var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000))

    func randomFloats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in (rng.nextFloat() * 2 - 1) * scale } }

    /// Random Q4_0 / Q4_1 / Q8_0 blocks with finite f16 scales.
    func randomBlocks(_ dtype: DType, rows: Int, cols: Int) -> [UInt8] {
        let nb = rows * cols / 32
        var out = [UInt8]()
        for _ in 0..<nb {
            let d = lt_f32_to_f16(rng.nextFloat() * 0.1 + 0.001)
            let m = lt_f32_to_f16(rng.nextFloat() * 0.2 - 0.1)
            out += [UInt8(d & 0xff), UInt8(d >> 8)]
            if dtype == .q4_1 { out += [UInt8(m & 0xff), UInt8(m >> 8)] }
            let payload = dtype == .q8_0 ? 32 : 16
            for _ in 0..<payload { out.append(UInt8(truncatingIfNeeded: rng.next())) }
        }
        return out
    }

    /// Dequantizes one block row in float64 straight from the format definition.
    func referenceRow(_ dtype: DType, _ bytes: [UInt8], row: Int, cols: Int) -> [Double] {
        let bs = dtype.bytesPerBlock
        var out = [Double](repeating: 0, count: cols)
        for b in 0..<(cols / 32) {
            let o = (row * cols / 32 + b) * bs
            let d = Double(lt_f16_to_f32(UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8))
            switch dtype {
            case .q8_0:
                for j in 0..<32 { out[b * 32 + j] = d * Double(Int8(bitPattern: bytes[o + 2 + j])) }
            case .q4_0:
                for j in 0..<16 {
                    out[b * 32 + j] = d * Double(Int(bytes[o + 2 + j] & 15) - 8)
                    out[b * 32 + j + 16] = d * Double(Int(bytes[o + 2 + j] >> 4) - 8)
                }
            default:
                let m = Double(lt_f16_to_f32(UInt16(bytes[o + 2]) | UInt16(bytes[o + 3]) << 8))
                for j in 0..<16 {
                    out[b * 32 + j] = d * Double(bytes[o + 4 + j] & 15) + m
                    out[b * 32 + j + 16] = d * Double(bytes[o + 4 + j] >> 4) + m
                }
            }
        }
        return out
    }

    func assertClose(_ a: [Float], _ b: [Double], rel: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        for i in 0..<min(a.count, b.count) where abs(Double(a[i]) - b[i]) > rel * scale {
            XCTFail("\(what)[\(i)]: got \(a[i]), want \(b[i]) (tolerance \(rel * scale))", file: file, line: line)
            return
        }
    }

    /// Every kernel tier this CPU runs.
    func bothPaths(_ body: (String) throws -> Void) rethrows {
        try CPUTier.forEachRunnable { try body($0.name) }
    }

    func testQuantizedMatvecMatchesFloat64() {
        for dtype in [DType.q4_0, .q4_1, .q8_0] {
            let rows = 37, cols = 32 * 19
            let w = randomBlocks(dtype, rows: rows, cols: cols)
            let x = randomFloats(cols)
            let want = (0..<rows).map { r in zip(referenceRow(dtype, w, row: r, cols: cols), x).reduce(0.0) { $0 + $1.0 * Double($1.1) } }
            var sums = [Float](repeating: 0, count: cols / 32)
            lt_block_sums(x, &sums, Int64(cols))
            bothPaths { path in
                var y = [Float](repeating: .nan, count: rows)
                w.withUnsafeBytes { wp in
                    switch dtype {
                    case .q8_0: lt_matvec_q8_0(wp.baseAddress, x, &y, Int64(cols), 0, Int64(rows))
                    case .q4_0: lt_matvec_q4_0(wp.baseAddress, x, sums, &y, Int64(cols), 0, Int64(rows))
                    default: lt_matvec_q4_1(wp.baseAddress, x, sums, &y, Int64(cols), 0, Int64(rows))
                    }
                }
                assertClose(y, want, rel: 1e-5, "\(dtype) matvec \(path)")
            }
        }
    }

    func testGEMMMatchesFloat64() {
        for (m, n, k) in [(1, 1, 1), (5, 7, 3), (17, 33, 65), (64, 48, 576)] {
            let a = randomFloats(m * k), b = randomFloats(n * k)
            var want = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { for p in 0..<k { want[i * n + j] += Double(a[i * k + p]) * Double(b[j * k + p]) } } }
            bothPaths { path in
                var c = [Float](repeating: .nan, count: m * n)
                lt_sgemm_nt_rows(0, Int64(m), Int64(n), Int64(k), a, b, &c, 0)
                assertClose(c, want, rel: 1e-5, "builtin gemm \(m)x\(n)x\(k) \(path)")
            }
            if lt_dnnl_available(nil) != 0 {
                var c = [Float](repeating: .nan, count: m * n)
                lt_sgemm_nt(Int64(m), Int64(n), Int64(k), a, b, &c, 0)
                assertClose(c, want, rel: 1e-5, "oneDNN gemm \(m)x\(n)x\(k)")
            }
        }
    }

    func testAttentionMatchesFloat64() {
        let nH = 6, nKV = 2, hd = 16, p0 = 3, T = 5
        let n = p0 + T, kvW = nKV * hd
        let q = randomFloats(T * nH * hd), k = randomFloats(n * kvW), v = randomFloats(n * kvW)
        let scale = 1 / Float(hd).squareRoot()
        var want = [Double](repeating: 0, count: T * nH * hd)
        for h in 0..<nH {
            let kh = h / (nH / nKV)
            for t in 0..<T {
                let keys = p0 + t + 1
                var s = (0..<keys).map { j in (0..<hd).reduce(0.0) { $0 + Double(q[t * nH * hd + h * hd + $1]) * Double(k[j * kvW + kh * hd + $1]) } * Double(scale) }
                let mx = s.max()!
                s = s.map { exp($0 - mx) }
                let z = s.reduce(0, +)
                for j in 0..<keys { for i in 0..<hd { want[t * nH * hd + h * hd + i] += s[j] / z * Double(v[j * kvW + kh * hd + i]) } }
            }
        }
        bothPaths { path in
            var out = [Float](repeating: .nan, count: T * nH * hd)
            var scratch = [Float](repeating: 0, count: n)
            lt_attention_causal(q, k, v, &out, Int64(T), Int64(p0), Int64(nH), Int64(nKV), Int64(hd), Int64(kvW), scale, 0, Int64(nH), &scratch)
            assertClose(out, want, rel: 1e-5, "attention \(path)")
        }
    }

    func testNormAndActivationMatchFloat64() {
        let n = 577
        let x = randomFloats(n, scale: 3), w = randomFloats(n)
        let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
        let want = (0..<n).map { Double(w[$0]) * Double(x[$0]) / (ms + 1e-5).squareRoot() }
        var y = [Float](repeating: .nan, count: n)
        lt_rmsnorm(x, w, &y, Int64(n), 1e-5)
        assertClose(y, want, rel: 1e-5, "rmsnorm")

        let g = randomFloats(n, scale: 8), u = randomFloats(n)
        let wantS = (0..<n).map { Double(g[$0]) / (1 + exp(-Double(g[$0]))) * Double(u[$0]) }
        var s = [Float](repeating: .nan, count: n)
        lt_swiglu(g, u, &s, Int64(n))
        assertClose(s, wantS, rel: 1e-5, "swiglu")
    }

    func testRopeMatchesFloat64() {
        let hd = 64, heads = 3, pos = 1234
        for scaling in [nil, RopeScaling(type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192)] {
            let rope = Rope(headDim: hd, theta: 500000, scaling: scaling)
            let x = randomFloats(hd * heads)
            var y = x
            y.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, heads: heads, position: pos) }
            var want = [Double](repeating: 0, count: hd * heads)
            for h in 0..<heads {
                for i in 0..<(hd / 2) {
                    var f = 1 / pow(500000.0, Double(2 * i) / Double(hd))
                    if scaling != nil {
                        let wl = 2 * Double.pi / f
                        if wl > 8192 { f /= 8 } else if wl >= 2048 {
                            let sm = (8192 / wl - 1) / 3
                            f = (1 - sm) * f / 8 + sm * f
                        }
                    }
                    let a = Double(pos) * f
                    let x1 = Double(x[h * hd + i]), x2 = Double(x[h * hd + i + hd / 2])
                    want[h * hd + i] = x1 * cos(a) - x2 * sin(a)
                    want[h * hd + i + hd / 2] = x2 * cos(a) + x1 * sin(a)
                }
            }
            // float32 angles at position 1234 carry ~1e-4 absolute phase error, as in transformers.
            assertClose(y, want, rel: 1e-3, "rope scaling=\(scaling?.type ?? "none")")
        }
    }

    func testHalfConversionRoundTrips() {
        for bits in stride(from: 0, through: 0xffff, by: 1) {
            let h = UInt16(bits)
            let f = lt_f16_to_f32(h)
            if f.isNaN { continue }
            XCTAssertEqual(lt_f32_to_f16(f), h, "half \(String(h, radix: 16))")
        }
        XCTAssertEqual(lt_f32_to_f16(1.0 + 2.0 / 4096), 0x3c00)   // half an ulp: ties to even
        XCTAssertEqual(lt_f32_to_f16(1.0 + 6.0 / 4096), 0x3c02)
        XCTAssertEqual(lt_f32_to_f16(1.0 + 3.0 / 4096), 0x3c01)
        XCTAssertEqual(lt_f32_to_f16(65520), 0x7c00)
    }
}

extension KernelTests {
    /// All four transpose combinations, strided operands, alpha and beta, on both GEMMs.
    func testGeneralGEMMAllTransposes() {
        let (m, n, k) = (13, 21, 37)
        for ta in ["N", "T"] {
            for tb in ["N", "T"] {
                // Leading dimensions larger than needed, to catch stride mistakes.
                let lda = (ta == "N" ? k : m) + 3, ldb = (tb == "N" ? n : k) + 2, ldc = n + 5
                let a = randomFloats((ta == "N" ? m : k) * lda), b = randomFloats((tb == "N" ? k : n) * ldb)
                let c0 = randomFloats(m * ldc)
                let alpha: Float = 0.75, beta: Float = 0.5
                func A(_ i: Int, _ p: Int) -> Double { Double(ta == "N" ? a[i * lda + p] : a[p * lda + i]) }
                func B(_ p: Int, _ j: Int) -> Double { Double(tb == "N" ? b[p * ldb + j] : b[j * ldb + p]) }
                var want = c0.map(Double.init)
                for i in 0..<m { for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k { s += A(i, p) * B(p, j) }
                    want[i * ldc + j] = Double(alpha) * s + Double(beta) * Double(c0[i * ldc + j])
                } }
                for useDNNL in [false, true] where !useDNNL || lt_dnnl_available(nil) != 0 {
                    lt_set_dnnl_enabled(useDNNL ? 1 : 0)
                    var c = c0
                    let rc = lt_sgemm(CChar(bitPattern: ta.utf8.first!), CChar(bitPattern: tb.utf8.first!),
                                      Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb), beta, &c, Int64(ldc))
                    XCTAssertEqual(rc, 0)
                    assertClose(c, want, rel: 1e-5, "sgemm \(ta)\(tb) \(useDNNL ? "oneDNN" : "built-in")")
                }
                lt_set_dnnl_enabled(1)
            }
        }
    }
}
