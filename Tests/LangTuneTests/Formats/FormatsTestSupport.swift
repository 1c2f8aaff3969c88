import Foundation
import XCTest
@testable import LangTune

/// Little-endian byte assembly for hand-made (often deliberately broken) files.
struct RawBytes {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func pad(to alignment: Int) { while bytes.count % alignment != 0 { bytes.append(0) } }

    /// A GGUF header: magic, version, counts.
    static func ggufHeader(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) -> RawBytes {
        var r = RawBytes()
        r.raw(Array("GGUF".utf8))
        r.u32(version)
        r.u64(tensors)
        r.u64(kvs)
        return r
    }

    /// A tensor-info record.
    mutating func tensorInfo(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        str(name)
        u32(UInt32(ne.count))
        for d in ne { u64(d) }
        u32(type)
        u64(offset)
    }
}

extension XCTestCase {
    /// A fresh folder removed after the test.
    func makeTempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-formats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Asserts that `body` throws a FormatError whose file is `file` (when given)
    /// and whose problem contains every string in `contains`.
    func assertFormatError<T>(_ body: @autoclosure () throws -> T, file expectedFile: String? = nil,
                              contains: [String], _ message: String = "",
                              file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected a FormatError containing \(contains) \(message)", file: file, line: line)
        } catch let e as FormatError {
            if let f = expectedFile { XCTAssertEqual(e.file, f, "\(message)", file: file, line: line) }
            for s in contains {
                XCTAssertTrue(e.problem.contains(s), "\"\(e.problem)\" lacks \"\(s)\" \(message)", file: file, line: line)
            }
        } catch {
            XCTFail("expected FormatError, got \(error) \(message)", file: file, line: line)
        }
    }

    func storage(_ bytes: [UInt8]) -> ByteStorage { ByteStorage(copying: bytes) }

    func loadJSON(_ relative: String) throws -> Any {
        let url = try TestPaths.require(TestPaths.fixture(relative), hint: "fixture from the ref branch")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }
}

func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count / 2)
    var it = s.utf8.makeIterator()
    func nib(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    while let a = it.next(), let b = it.next() { out.append(nib(a) << 4 | nib(b)) }
    return out
}

func floatArray(_ any: Any?) -> [Float] { (any as? [Any] ?? []).map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) } }

/// llama.cpp's converter permute (reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)), written independently.
func llamaCppPermute(_ rows: [[Float]], heads: Int) -> [[Float]] {
    let hd = rows.count / heads
    var out = rows
    for h in 0..<heads { for a in 0..<2 { for b in 0..<(hd / 2) {
        // Source index [h, a, b] → destination index [h, b, a] of shape (heads, hd/2, 2).
        out[h * hd + b * 2 + a] = rows[h * hd + a * (hd / 2) + b]
    } } }
    return out
}
