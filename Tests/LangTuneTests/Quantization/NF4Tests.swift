import Foundation
import XCTest
@testable import LangTune

/// NF4 with double quantization against bitsandbytes 0.50 (`Tests/Reference/nf4_reference.py`):
/// NF4 codes identical to bitsandbytes' own; absmax codes, nested scales, offset and dequantized
/// values identical to its default backend (ported in the reference script), on seeded random
/// tensors and on two of SmolLM2's real weights.
final class NF4Tests: XCTestCase {
    struct Tensor: Decodable {
        let name: String
        let shape: [Int]
        let packed_sha256, packed_plain_sha256, absmax_plain_sha256, absmax_codes_sha256: String
        let absmax_codes_head: [Int]
        let nested_absmax: [Float]
        let nested_absmax_sha256, absmax_dequantized_sha256, dequantized_sha256, dequantized_plain_sha256: String
        let offset: Float
        let sample_index: [Int]
        let sample_values: [Float]
        let mean_abs_error, mean_abs_error_plain: Double
        let input_b64: String?
        let input_sha256: String?
        let bnb_cpu_offset: Float
        let bnb_cpu_absmax_code_agreement: Double
        let bnb_cpu_absmax_codes_within_one: Bool
    }
    struct Fixture: Decodable {
        let nf4_code: [Float]
        let dynamic_map: [Float]
        let tensors: [Tensor]
    }
    static let fixture: Fixture = try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: TestPaths.fixture("nf4.json")))

    func sha<T>(_ a: [T]) -> String { a.withUnsafeBytes { TokenizerTestSHA256.hex(Array($0)) } }

    func testTablesMatchBitsandbytes() {
        XCTAssertEqual(BitsAndBytes.nf4Code, Self.fixture.nf4_code)
        XCTAssertEqual(BitsAndBytes.dynamicMap, Self.fixture.dynamic_map)
    }

    func check(_ values: [Float], _ t: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        let q = NF4Tensor.quantize(values, shape: t.shape, doubleQuant: true)
        let plain = NF4Tensor.quantize(values, shape: t.shape, doubleQuant: false)
        XCTAssertEqual(sha(q.packed), t.packed_sha256, "\(t.name) codes", file: file, line: line)
        XCTAssertEqual(sha(plain.packed), t.packed_plain_sha256, "\(t.name) codes", file: file, line: line)
        XCTAssertEqual(sha(plain.absmax), t.absmax_plain_sha256, "\(t.name) absmax", file: file, line: line)
        guard case .double(let codes, let nested, let offset, _) = q.scales else { return XCTFail("not double-quantized") }
        XCTAssertEqual(offset, t.offset, "\(t.name) offset", file: file, line: line)
        // bitsandbytes' own CPU path: offset from torch's float32 mean (within 1e-6 relative of ours), absmax
        // codes from its approximate binary search (neighbours of ours where they differ).
        XCTAssertLessThanOrEqual(abs(offset - t.bnb_cpu_offset), 1e-6 * abs(offset), "\(t.name)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(t.bnb_cpu_absmax_code_agreement, 0.99, file: file, line: line)
        XCTAssertTrue(t.bnb_cpu_absmax_codes_within_one, file: file, line: line)
        XCTAssertEqual(codes.prefix(16).map(Int.init), t.absmax_codes_head, "\(t.name)", file: file, line: line)
        XCTAssertEqual(sha(codes), t.absmax_codes_sha256, "\(t.name) absmax codes", file: file, line: line)
        XCTAssertEqual(sha(nested), t.nested_absmax_sha256, "\(t.name) nested absmax", file: file, line: line)
        XCTAssertEqual(sha(q.absmax), t.absmax_dequantized_sha256, "\(t.name) dequantized absmax", file: file, line: line)
        let d = q.dequantize()
        XCTAssertEqual(sha(d), t.dequantized_sha256, "\(t.name) dequantized", file: file, line: line)
        XCTAssertEqual(sha(plain.dequantize()), t.dequantized_plain_sha256, "\(t.name) dequantized (plain)", file: file, line: line)
        XCTAssertEqual(t.sample_index.map { d[$0] }, t.sample_values, file: file, line: line)
        // Round-trip error: what bitsandbytes reports for the same tensor.
        let err = zip(d, values).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(values.count)
        XCTAssertEqual(err, t.mean_abs_error, accuracy: 1e-6 * max(1, t.mean_abs_error), file: file, line: line)
        // Tiles decode like the whole.
        var tile = [Float](repeating: 0, count: 77)
        let start = min(3, values.count - 1), end = min(start + 77, values.count)
        tile.withUnsafeMutableBufferPointer { q.dequantize(start, end, into: $0.baseAddress!) }
        XCTAssertEqual(Array(tile[0..<(end - start)]), Array(d[start..<end]), file: file, line: line)
    }

    func testRandomTensorsMatchBitsandbytes() throws {
        for t in Self.fixture.tensors where t.input_b64 != nil {
            let data = try XCTUnwrap(Data(base64Encoded: t.input_b64!))
            let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            check(values, t)
        }
    }

    func testRealWeightsMatchBitsandbytes() throws {
        let files = try ModelFiles.load(try TestPaths.require(TestPaths.smolLM2GGUF).path)
        for t in Self.fixture.tensors where t.input_sha256 != nil {
            let w = try dequantize(try XCTUnwrap(files.tensors[t.name]))
            XCTAssertEqual(sha(w), t.input_sha256, "\(t.name): the same float input as the reference")
            check(w, t)
        }
    }

    /// Fresh random inputs: every value decodes to its nearest level times the block's absmax.
    func testCodesAreNearestLevels() {
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        let n = 64 * 37 + 19
        let x = (0..<n).map { _ in Float(rng.nextDouble() * 2 - 1) * 3 }
        let q = NF4Tensor.quantize(x, shape: [n], doubleQuant: false)
        let absmax = q.absmax
        let code = BitsAndBytes.nf4Code
        for i in 0..<n {
            let byte = q.packed[i / 2]
            let c = Int(i % 2 == 0 ? byte >> 4 : byte & 15)
            let s = x[i] / absmax[i / 64]
            let best = code.indices.min { abs(code[$0] - s) < abs(code[$1] - s) }!
            XCTAssertLessThanOrEqual(abs(code[c] - s), abs(code[best] - s) + 1e-6, "value \(i)")
        }
    }
}
