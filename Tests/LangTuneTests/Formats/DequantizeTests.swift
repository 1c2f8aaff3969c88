import Foundation
import XCTest
@testable import LangTune

final class DequantizeTests: XCTestCase {
    /// Every type in dequant.json (made by gguf-py's dequantize) must match bit for bit, on every kernel tier.
    func testEveryTypeMatchesGGUFPyExactly() throws {
        try CPUTier.forEachRunnable { _ in try everyTypeMatchesGGUFPyExactly() }
    }

    func everyTypeMatchesGGUFPyExactly() throws {
        let doc = try XCTUnwrap(loadJSON("gguf/dequant.json") as? [String: Any])
        let entries = try XCTUnwrap(doc["entries"] as? [[String: Any]])
        var seen: Set<String> = []
        for e in entries {
            let name = try XCTUnwrap(e["type"] as? String)
            let dtype = try XCTUnwrap(DType(rawValue: try XCTUnwrap(e["ggml_type"] as? Int)), name)
            XCTAssertEqual(dtype.description, name)
            let n = try XCTUnwrap(e["n"] as? Int)
            let raw = hexBytes(try XCTUnwrap(e["hex"] as? String))
            let expected = floatArray(e["values"])
            XCTAssertEqual(expected.count, n)
            XCTAssertEqual(dtype.byteCount(elements: n), raw.count, name)
            var got = [Float](repeating: .nan, count: n)
            raw.withUnsafeBytes { src in got.withUnsafeMutableBufferPointer { dequantizeRow(dtype, src.baseAddress!, $0.baseAddress!, count: n) } }
            var mismatches = 0
            for i in 0..<n where got[i].bitPattern != expected[i].bitPattern {
                // JSON cannot be trusted to keep the sign of zero; everything else must be identical bits.
                if got[i] == 0 && expected[i] == 0 { continue }
                if mismatches < 5 { XCTFail("\(name)[\(i)]: got \(got[i]), expected \(expected[i])") }
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, name)
            // The same through the WeightTensor API (shape [rows, cols]).
            let t = WeightTensor(name: name, shape: [n / dtype.blockSize, dtype.blockSize], dtype: dtype,
                                 storage: ByteStorage(copying: raw), offset: 0, byteCount: raw.count)
            XCTAssertEqual(try dequantize(t).map(\.bitPattern), got.map(\.bitPattern))
            seen.insert(name)
        }
        XCTAssertEqual(seen, ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
    }

    /// A hand-built Q4_1 block, independent of any fixture.
    func testQ4_1HandBlock() throws {
        var b = RawBytes()
        b.raw(withUnsafeBytes(of: Float16Bits.fromFloat(0.5).littleEndian) { Array($0) })
        b.raw(withUnsafeBytes(of: Float16Bits.fromFloat(-1).littleEndian) { Array($0) })
        for j in 0..<16 { b.u8(UInt8(j) | UInt8(15 - j) << 4) }
        let t = WeightTensor(name: "q", shape: [32], dtype: .q4_1, storage: storage(b.bytes), offset: 0, byteCount: 20)
        let v = try dequantize(t)
        for j in 0..<16 {
            XCTAssertEqual(v[j], Float(j) * 0.5 - 1)
            XCTAssertEqual(v[j + 16], Float(15 - j) * 0.5 - 1)
        }
    }

    /// Q8_1 and Q8_K (not in the fixture; ggml's intermediate types) by hand.
    func testQ8_1AndQ8_KHandBlocks() throws {
        var b = RawBytes()
        b.raw(withUnsafeBytes(of: Float16Bits.fromFloat(0.25).littleEndian) { Array($0) })
        b.raw([0x12, 0x34])  // the sum field, unused
        for j in 0..<32 { b.u8(UInt8(bitPattern: Int8(j - 16))) }
        let t = WeightTensor(name: "q", shape: [32], dtype: .q8_1, storage: storage(b.bytes), offset: 0, byteCount: 36)
        XCTAssertEqual(try dequantize(t), (0..<32).map { Float($0 - 16) * 0.25 })
        var k = RawBytes()
        k.u32(Float(-0.5).bitPattern)
        for j in 0..<256 { k.u8(UInt8(bitPattern: Int8(truncatingIfNeeded: j * 3 - 128))) }
        k.raw([UInt8](repeating: 0xEE, count: 32))  // bsums, unused
        let tk = WeightTensor(name: "k", shape: [256], dtype: .q8_K, storage: storage(k.bytes), offset: 0, byteCount: 292)
        XCTAssertEqual(try dequantize(tk), (0..<256).map { -0.5 * Float(Int8(truncatingIfNeeded: $0 * 3 - 128)) })
    }

    func testPlainTypesConvertValueByValue() throws {
        let ints: [Int32] = [-3, 0, 7, 1 << 20]
        let t = WeightTensor(name: "i", shape: [4], dtype: .i32, storage: ByteStorage(copying: ints), offset: 0, byteCount: 16)
        XCTAssertEqual(try dequantize(t), [-3, 0, 7, 1_048_576])
        let f: [Float] = [1.5, -2, .infinity]
        let tf = WeightTensor(name: "f", shape: [3], dtype: .f32, storage: ByteStorage(copying: f), offset: 0, byteCount: 12)
        XCTAssertEqual(try dequantize(tf), f)
        let bf: [UInt16] = [0x3F80, 0xC2F7]
        let tb = WeightTensor(name: "b", shape: [2], dtype: .bf16, storage: ByteStorage(copying: bf), offset: 0, byteCount: 4)
        XCTAssertEqual(try dequantize(tb), [1, -123.5])
    }

    func testDequantizeRejectsInconsistentTensors() {
        let s = ByteStorage(copying: [UInt8](repeating: 0, count: 40))
        assertFormatError(try dequantize(WeightTensor(name: "w", shape: [2, 32], dtype: .q4_1, storage: s, offset: 0, byteCount: 20)),
                          file: "w", contains: ["bytes do not hold"])
        assertFormatError(try dequantize(WeightTensor(name: "w", shape: [2, 20], dtype: .q4_1, storage: s, offset: 0, byteCount: 40)),
                          file: "w", contains: ["not whole Q4_1 blocks"])
        assertFormatError(try dequantize(WeightTensor(name: "w", shape: [2, 32], dtype: .q4_1, storage: s, offset: 8, byteCount: 40)),
                          file: "w", contains: ["outside its storage"])
        assertFormatError(try dequantize(WeightTensor(name: "w", shape: [Int.max, 4], dtype: .f32, storage: s, offset: 0, byteCount: 40)),
                          file: "w", contains: ["invalid shape"])
    }

    /// Half → float for all 65536 bit patterns agrees with the platform's Float16.
    func testHalfToFloatExhaustive() {
        #if !(os(macOS) && arch(x86_64))
        for h in 0...UInt16.max {
            let mine = Float16Bits.toFloat(h)
            let ref = Float(Float16(bitPattern: h))
            if ref.isNaN { XCTAssertTrue(mine.isNaN, "\(h)"); continue }
            XCTAssertEqual(mine.bitPattern, ref.bitPattern, "half \(String(h, radix: 16))")
            XCTAssertEqual(Float16Bits.fromFloat(mine), h, "round trip \(String(h, radix: 16))")
        }
        #endif
        XCTAssertEqual(Float16Bits.toFloat(0x3C00), 1)
        XCTAssertEqual(Float16Bits.toFloat(0x0001), 0x1p-24)
        XCTAssertEqual(Float16Bits.toFloat(0xFC00), -.infinity)
    }

    /// Float → half rounds to nearest, ties to even, like IEEE conversion.
    func testFloatToHalfRounding() {
        // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to even (1).
        XCTAssertEqual(Float16Bits.fromFloat(1 + 0x1p-11), 0x3C00)
        // 1 + 3·2^-11 is halfway between 1+2^-10 (odd) and 1+2·2^-10 (even).
        XCTAssertEqual(Float16Bits.fromFloat(1 + 3 * 0x1p-11), 0x3C02)
        XCTAssertEqual(Float16Bits.fromFloat(1 + 0x1p-11 + 0x1p-20), 0x3C01)
        XCTAssertEqual(Float16Bits.fromFloat(65520), 0x7C00)  // rounds up past the largest half
        XCTAssertEqual(Float16Bits.fromFloat(65519), 0x7BFF)
        XCTAssertEqual(Float16Bits.fromFloat(-0.0), 0x8000)
        XCTAssertEqual(Float16Bits.fromFloat(0x1p-25), 0x0000)  // tie between 0 and the smallest subnormal → even
        XCTAssertEqual(Float16Bits.fromFloat(0x1.8p-24), 0x0002)  // 1.5 subnormal steps → 2 (even)
        XCTAssertEqual(Float16Bits.fromFloat(.nan) & 0x7E00, 0x7E00)
        #if !(os(macOS) && arch(x86_64))
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if x.isNaN { continue }
            XCTAssertEqual(Float16Bits.fromFloat(x), Float16(x).bitPattern, "\(x)")
        }
        #endif
    }

    func testBFloat16Rounding() {
        XCTAssertEqual(BFloat16Bits.fromFloat(1 + 0x1p-8), 0x3F80)  // tie → even
        XCTAssertEqual(BFloat16Bits.fromFloat(1 + 3 * 0x1p-8), 0x3F82)  // tie → even (up)
        XCTAssertEqual(BFloat16Bits.fromFloat(1 + 0x1p-8 + 0x1p-20), 0x3F81)
        XCTAssertEqual(BFloat16Bits.fromFloat(-123.5), 0xC2F7)
        XCTAssertTrue(BFloat16Bits.toFloat(BFloat16Bits.fromFloat(.nan)).isNaN)
        XCTAssertEqual(BFloat16Bits.fromFloat(.greatestFiniteMagnitude), 0x7F80)  // overflows to inf
    }

    /// Q8_0 quantization: d = amax/127, q = roundf(x·(1/d)), ties away from zero.
    func testQuantizeQ8_0LikeGGML() throws {
        var x = [Float](repeating: 0, count: 64)
        x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = 0.5; x[4] = -0.49; x[5] = 126.5
        x[32] = -254; x[33] = 5; x[34] = -3; x[35] = 1
        let q = quantizeQ8_0(x)
        XCTAssertEqual(q.count, 68)
        XCTAssertEqual(UInt16(q[0]) | UInt16(q[1]) << 8, 0x3C00)  // d = 1
        XCTAssertEqual(q[2...7].map { Int8(bitPattern: $0) }, [127, 3, -3, 1, 0, 127])
        XCTAssertEqual(UInt16(q[34]) | UInt16(q[35]) << 8, 0x4000)  // d = 2
        // 5/2 = 2.5 → 3 and -3/2 = -1.5 → -2 (half away from zero, not to even); 1/2 → 1.
        XCTAssertEqual(q[36...39].map { Int8(bitPattern: $0) }, [-127, 3, -2, 1])
        // All zeros: d = 0 and codes 0.
        XCTAssertEqual(quantizeQ8_0([Float](repeating: 0, count: 32)), [UInt8](repeating: 0, count: 34))
        // NaN and inf inputs still give valid blocks.
        var bad = [Float](repeating: 1, count: 32)
        bad[3] = .nan
        bad[4] = .infinity
        let qb = quantizeQ8_0(bad)
        XCTAssertEqual(qb.count, 34)
    }

    /// Re-quantizing gguf-py's Q8_0 output (tiny_gguf.json) reproduces its bytes exactly.
    func testQuantizeQ8_0ReproducesGGUFPyBlocks() throws {
        let doc = try XCTUnwrap(loadJSON("gguf/tiny_gguf.json") as? [String: Any])
        let blob = [UInt8](try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(doc["base64"] as? String))))
        let tensors = try XCTUnwrap(doc["tensors"] as? [[String: Any]])
        let q8 = try XCTUnwrap(tensors.first { ($0["name"] as? String) == "c.q8_0" })
        let offset = try XCTUnwrap(q8["file_offset"] as? Int)
        let values = floatArray(q8["values"])
        XCTAssertEqual(quantizeQ8_0(values), Array(blob[offset..<offset + 68]))
    }

    func testDequantizeSpeedSmoke() throws {
        // Guards against a pathological slowdown (e.g. per-element allocation), not a benchmark.
        let n = 1 << 20
        let bytes = [UInt8](repeating: 0x5A, count: n / 32 * 20)
        let t = WeightTensor(name: "w", shape: [n / 1024, 1024], dtype: .q4_1, storage: ByteStorage(copying: bytes), offset: 0, byteCount: bytes.count)
        let start = Date()
        let v = try dequantize(t)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(v.count, n)
        print("dequantize Q4_1: \(n) elements in \(String(format: "%.1f", seconds * 1000)) ms")
        XCTAssertLessThan(seconds, 2.0)
    }
}
