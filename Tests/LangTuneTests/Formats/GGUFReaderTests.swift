import Foundation
import XCTest
@testable import LangTune

final class GGUFReaderTests: XCTestCase {
    struct Tiny {
        let blob: [UInt8]
        let doc: [String: Any]
        let keyOrder: [String]
    }

    func tiny() throws -> Tiny {
        let url = try TestPaths.require(TestPaths.fixture("gguf/tiny_gguf.json"), hint: "fixture from the ref branch")
        let text = try String(contentsOf: url, encoding: .utf8)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let blob = [UInt8](try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(doc["base64"] as? String))))
        // The fixture lists metadata in file order; JSONSerialization forgets order, the text does not.
        let meta = try XCTUnwrap(doc["metadata"] as? [String: Any])
        let order = meta.keys.sorted {
            text.range(of: "\n  \"\($0)\": {")!.lowerBound < text.range(of: "\n  \"\($1)\": {")!.lowerBound
        }
        return Tiny(blob: blob, doc: doc, keyOrder: order)
    }

    /// The GGUFValue the fixture's {"type", "value", ...} record describes.
    func expectedValue(_ rec: [String: Any]) throws -> GGUFValue {
        let type = try XCTUnwrap(rec["type"] as? Int)
        return try value(type: type, rec["value"], elemType: rec["elem_type"] as? Int, valueStr: rec["value_str"] as? String)
    }

    func value(type: Int, _ v: Any?, elemType: Int?, valueStr: String?) throws -> GGUFValue {
        let n = v as? NSNumber
        switch type {
        case 0: return .u8(UInt8(n!.intValue))
        case 1: return .i8(Int8(n!.intValue))
        case 2: return .u16(UInt16(n!.intValue))
        case 3: return .i16(Int16(n!.intValue))
        case 4: return .u32(UInt32(n!.int64Value))
        case 5: return .i32(Int32(n!.intValue))
        case 6: return .f32(Float(n!.doubleValue))
        case 7: return .bool(v as! Bool)
        case 8: return .string(v as! String)
        case 10: return .u64(UInt64(valueStr!)!)
        case 11: return .i64(Int64(valueStr!)!)
        case 12: return .f64(n!.doubleValue)
        case 9:
            let items = v as! [Any]
            let et = try XCTUnwrap(elemType)
            if et == 9 {
                return .array(elementType: 9, try items.map {
                    let r = $0 as! [String: Any]
                    return try value(type: 9, r["value"], elemType: r["elem_type"] as? Int, valueStr: nil)
                })
            }
            return .array(elementType: UInt32(et), try items.map { try value(type: et, $0, elemType: nil, valueStr: nil) })
        default: throw XCTSkip("unknown type \(type)")
        }
    }

    func testReadsTinyFixture() throws {
        let t = try tiny()
        let g = try GGUFFile(storage: storage(t.blob), path: "tiny.gguf")
        XCTAssertEqual(g.version, 3)
        XCTAssertEqual(g.alignment, 32)
        XCTAssertEqual(g.metadataKeys, t.keyOrder)
        let meta = try XCTUnwrap(t.doc["metadata"] as? [String: [String: Any]])
        XCTAssertEqual(g.metadata.count, meta.count)
        for (key, rec) in meta {
            XCTAssertEqual(g.metadata[key], try expectedValue(rec), key)
        }
        XCTAssertEqual(g.metadata["tiny.u64"]?.int, nil)  // u64 max does not fit Int
        XCTAssertEqual(g.metadata["tiny.i64"]?.int, Int.min)
        XCTAssertEqual(g.metadata["tiny.string"]?.string, "Türkçe İı 中文，🙂 \"quoted\"\n")
        let tensors = try XCTUnwrap(t.doc["tensors"] as? [[String: Any]])
        XCTAssertEqual(g.tensorNames, tensors.map { $0["name"] as! String })
        for rec in tensors {
            let name = rec["name"] as! String
            let info = try XCTUnwrap(g.tensorInfo(name))
            XCTAssertEqual(info.ne, rec["ne"] as! [Int], name)
            XCTAssertEqual(info.shape, rec["shape"] as! [Int], name)
            XCTAssertEqual(info.dtype.rawValue, rec["ggml_type"] as! Int, name)
            let w = try g.tensor(name)
            XCTAssertEqual(w.shape, rec["shape"] as! [Int])
            XCTAssertEqual(w.offset, rec["file_offset"] as! Int, name)
            XCTAssertEqual(try dequantize(w), floatArray(rec["values"]), name)
        }
        assertFormatError(try g.tensor("nope"), file: "tiny.gguf", contains: ["no tensor named \"nope\""])
    }

    /// Reading gguf-py's file and writing it again with GGUFWriter gives the same bytes.
    func testWriterReproducesGGUFPyBytes() throws {
        let t = try tiny()
        let g = try GGUFFile(storage: storage(t.blob), path: "tiny.gguf")
        var w = try GGUFWriter()
        for k in g.metadataKeys { w.set(k, g.metadata[k]!) }
        for info in g.tensorInfos { try w.addTensor(g.tensor(info)) }
        XCTAssertEqual(try w.serialized(), t.blob)
    }

    func testWriterRoundTripAllTypesAndAlignment() throws {
        let dir = try makeTempDir()
        let path = dir.appendingPathComponent("model.gguf").path
        var w = try GGUFWriter(alignment: 64)
        let values: [(String, GGUFValue)] = [
            ("a.u8", .u8(200)), ("a.i8", .i8(-7)), ("a.u16", .u16(60000)), ("a.i16", .i16(-300)),
            ("a.u32", .u32(4_000_000_000)), ("a.i32", .i32(-5)), ("a.u64", .u64(.max)), ("a.i64", .i64(.min)),
            ("a.f32", .f32(1.25)), ("a.f64", .f64(-0.1)), ("a.bool", .bool(true)), ("a.str", .string("İstanbul 🙂")),
            ("a.arr", .array(elementType: 8, [.string("x"), .string("")])),
            ("a.nested", .array(elementType: 9, [.array(elementType: 0, [.u8(1)]), .array(elementType: 9, [.array(elementType: 12, [.f64(2)])])])),
            ("a.empty", .array(elementType: 4, [])),
        ]
        for (k, v) in values { w.set(k, v) }
        w.set("a.i32", .i32(-6))  // replacing keeps the position
        let f: [Float] = (0..<64).map { Float($0) * 0.37 - 9 }
        try w.addTensor(name: "t.f32", shape: [2, 32], values: f, as: .f32)
        try w.addTensor(name: "t.f16", shape: [2, 32], values: f, as: .f16)
        try w.addTensor(name: "t.bf16", shape: [64], values: f, as: .bf16)
        try w.addTensor(name: "t.q8", shape: [2, 32], values: f, as: .q8_0)
        let q4k = (0..<144).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        try w.addTensor(name: "t.q4k", shape: [1, 256], dtype: .q4_K, bytes: q4k)
        try w.addTensor(name: "t.lazy", shape: [3], dtype: .i32) { [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0] }
        try w.write(to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.gguf"], "no temporary file left")

        let g = try GGUFFile(path: path)
        XCTAssertEqual(g.alignment, 64)
        XCTAssertEqual(g.metadataKeys, values.map(\.0) + ["general.alignment"])
        for (k, v) in values where k != "a.i32" { XCTAssertEqual(g.metadata[k], v, k) }
        XCTAssertEqual(g.metadata["a.i32"], .i32(-6))
        XCTAssertEqual(g.dataOffset % 64, 0)
        for info in g.tensorInfos { XCTAssertEqual(info.offset % 64, 0) }
        XCTAssertEqual(try dequantize(g.tensor("t.f32")), f)
        XCTAssertEqual(try dequantize(g.tensor("t.f16")), f.map { Float16Bits.toFloat(Float16Bits.fromFloat($0)) })
        XCTAssertEqual(try dequantize(g.tensor("t.bf16")), f.map { BFloat16Bits.toFloat(BFloat16Bits.fromFloat($0)) })
        XCTAssertEqual(Array(try g.tensor("t.q8").bytes), quantizeQ8_0(f))
        XCTAssertEqual(try g.tensor("t.q8").shape, [2, 32])
        XCTAssertEqual(g.tensorInfo("t.q8")?.ne, [32, 2])
        XCTAssertEqual(Array(try g.tensor("t.q4k").bytes), q4k)
        XCTAssertEqual(try dequantize(g.tensor("t.lazy")), [1, 2, 3])
        // Q8_0 values come back within half a step.
        let q = try dequantize(g.tensor("t.q8"))
        for i in 0..<64 { XCTAssertEqual(q[i], f[i], accuracy: (i < 32 ? 9 : 14.31) / 127 / 2 + 1e-4) }

        // Overwriting is atomic too: the new content replaces the old.
        var w2 = try GGUFWriter()
        w2.set("general.architecture", .string("llama"))
        try w2.write(to: path)
        XCTAssertEqual(try GGUFFile(path: path).metadataKeys, ["general.architecture"])
    }

    func testWriterRejectsBadInput() throws {
        var w = try GGUFWriter()
        try w.addTensor(name: "x", shape: [32], values: [Float](repeating: 0, count: 32), as: .f32)
        assertFormatError(try w.addTensor(name: "x", shape: [32], values: [Float](repeating: 0, count: 32), as: .f32), contains: ["added twice"])
        assertFormatError(try w.addTensor(name: "y", shape: [33], dtype: .q8_0, bytes: []), contains: ["not whole"])
        assertFormatError(try w.addTensor(name: "z", shape: [1, 1, 1, 1, 1], dtype: .f32, bytes: [0, 0, 0, 0]), contains: ["at most 4"])
        assertFormatError(try w.addTensor(name: "u", shape: [2], dtype: .u8, bytes: [0, 0]), contains: ["not a ggml type"])
        assertFormatError(try w.addTensor(name: "v", shape: [3], values: [1, 2], as: .f32), contains: ["does not hold"])
        assertFormatError(try GGUFWriter(alignment: 48), contains: ["power of two"])
        var bad = try GGUFWriter()
        bad.set("k", .array(elementType: 4, [.i32(1)]))
        assertFormatError(try bad.serialized(), contains: ["array of type 4"])
        var lazy = try GGUFWriter()
        try lazy.addTensor(name: "l", shape: [2], dtype: .f32) { [1, 2, 3] }
        let dir = try makeTempDir()
        let path = dir.appendingPathComponent("x.gguf").path
        assertFormatError(try lazy.write(to: path), file: path, contains: ["producer returned 3 bytes, expected 8"])
        assertFormatError(try lazy.addTensor(name: "m", shape: [0], dtype: .f32) { [] }, contains: ["invalid shape [0]"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "failed write leaves nothing")
        assertFormatError(try w.write(to: dir.appendingPathComponent("no/such/folder.gguf").path), contains: ["does not exist"])
    }

    // MARK: - Crafted broken files

    func check(_ bytes: [UInt8], _ contains: String..., line: UInt = #line) {
        assertFormatError(try GGUFFile(storage: storage(bytes), path: "bad.gguf"), file: "bad.gguf", contains: contains, line: line)
    }

    /// A valid file with one F32 tensor of `ne` at data offset 0, or the given pieces.
    func file(kvs: [(String, UInt32, [UInt8])] = [], tensors: [(String, [UInt64], UInt32, UInt64)] = [("w", [4], 0, 0)],
              data: Int = 32, version: UInt32 = 3, alignment: Int = 32) -> [UInt8] {
        var r = RawBytes.ggufHeader(version: version, tensors: UInt64(tensors.count), kvs: UInt64(kvs.count))
        for (k, type, payload) in kvs { r.str(k); r.u32(type); r.raw(payload) }
        for t in tensors { r.tensorInfo(t.0, ne: t.1, type: t.2, offset: t.3) }
        r.pad(to: alignment)
        r.raw([UInt8](repeating: 0, count: data))
        return r.bytes
    }

    func testValidCraftedFileParses() throws {
        let g = try GGUFFile(storage: storage(file()), path: "ok.gguf")
        XCTAssertEqual(g.tensorInfos.first?.ne, [4])
        XCTAssertEqual(g.version, 3)
        XCTAssertEqual(try GGUFFile(storage: storage(file(version: 2)), path: "v2.gguf").version, 2)
    }

    func testHeaderErrors() {
        check([], "not a GGUF file")
        check(Array("GGML".utf8) + [3, 0, 0, 0], "not a GGUF file", "47 47 4d 4c")
        check(file(version: 1), "version 1 is not supported")
        check(file(version: 4), "unsupported GGUF version 4")
        check(file(version: 0x0300_0000), "big-endian")
        check(Array(file().prefix(6)), "truncated", "version")
        check(Array(file().prefix(20)), "truncated", "metadata count")
    }

    func testCountErrors() {
        var r = RawBytes.ggufHeader(tensors: 0, kvs: 1 << 40)
        r.raw([UInt8](repeating: 0, count: 64))
        check(r.bytes, "metadata count 1099511627776 is impossible")
        r = RawBytes.ggufHeader(tensors: .max, kvs: 0)
        r.raw([UInt8](repeating: 0, count: 64))
        check(r.bytes, "tensor count 18446744073709551615 is impossible")
    }

    func testMetadataErrors() {
        // Truncated value.
        check(Array(file(kvs: [("k", 10, [1, 2, 3, 4, 5, 6, 7, 8])], tensors: [], data: 0).prefix(24 + 8 + 1 + 4 + 3)), "truncated", "metadata \"k\"")
        // String longer than the file.
        var s = RawBytes(); s.u64(1 << 50)
        check(file(kvs: [("k", 8, s.bytes)], tensors: []), "claims 1125899906842624 bytes")
        // Key length beyond the file.
        var r = RawBytes.ggufHeader(tensors: 0, kvs: 1)
        r.u64(.max); r.raw([UInt8](repeating: 0, count: 16))
        check(r.bytes, "metadata key #0", "claims")
        // Array count beyond the file.
        var a = RawBytes(); a.u32(4); a.u64(1 << 40)
        check(file(kvs: [("arr", 9, a.bytes)], tensors: []), "metadata \"arr\"", "claims 1099511627776 elements")
        // Unknown value type, unknown array element type.
        check(file(kvs: [("k", 13, [0])], tensors: []), "unknown value type 13")
        var e = RawBytes(); e.u32(77); e.u64(0)
        check(file(kvs: [("k", 9, e.bytes)], tensors: []), "unknown value type 77")
        // Duplicate key.
        check(file(kvs: [("k", 0, [1]), ("k", 0, [2])], tensors: []), "\"k\" appears twice")
        // Invalid UTF-8 key and value.
        var bad = RawBytes.ggufHeader(tensors: 0, kvs: 1)
        bad.u64(2); bad.raw([0xC3, 0x28]); bad.u32(0); bad.u8(0)
        check(bad.bytes, "not valid UTF-8")
        // Arrays nested too deep (each level: elem type 9, count 1).
        var deep = RawBytes()
        for _ in 0..<40 { deep.u32(9); deep.u64(1) }
        deep.u32(0); deep.u64(0)
        check(file(kvs: [("deep", 9, deep.bytes)], tensors: []), "nests arrays more than 16 deep")
        // Alignment not a power of two / wrong type.
        var al = RawBytes(); al.u32(48)
        check(file(kvs: [("general.alignment", 4, al.bytes)]), "general.alignment must be a power of two")
        check(file(kvs: [("general.alignment", 8, [1, 0, 0, 0, 0, 0, 0, 0, 0x41])]), "general.alignment must be a power of two")
    }

    func testTensorInfoErrors() {
        check(file(tensors: [("w", [1, 1, 1, 1, 1], 0, 0)]), "5 dimensions")
        check(file(tensors: [("w", [4, 0], 0, 0)]), "dimension 1 = 0")
        check(file(tensors: [("w", [UInt64.max], 0, 0)]), "dimension 0 = -1")
        check(file(tensors: [("w", [1 << 40, 1 << 40], 0, 0)]), "too many elements")
        check(file(tensors: [("w", [1 << 62, 4], 0, 0)]), "too many elements")
        check(file(tensors: [("w", [1 << 61], 0, 0)]), "too large")
        check(file(tensors: [("w", [32], 16, 0)]), "unsupported ggml type 16 (IQ2_XXS)")
        check(file(tensors: [("w", [32], 99, 0)]), "unsupported ggml type 99")
        check(file(tensors: [("w", [32], 1000, 0)]), "unsupported ggml type 1000")
        check(file(tensors: [("w", [33, 2], 2, 0)]), "rows of 33 elements", "Q4_0 block size 32")
        check(file(tensors: [("w", [4], 0, 16)]), "offset 16, not a multiple of the alignment 32")
        check(file(tensors: [("w", [16], 0, 0)]), "runs past the end of the file")
        check(file(tensors: [("w", [4], 0, 32)]), "runs past the end of the file")
        check(file(tensors: [("w", [4], 0, UInt64(Int.max) - 31)]), "runs past the end of the file")
        check(file(tensors: [("w", [4], 0, UInt64.max)]), "beyond any file")
        check(file(tensors: [("w", [4], 0, 0), ("w", [4], 0, 0)]), "\"w\" appears twice")
        check(Array(file().prefix(24 + 9 + 4 + 8 + 4 + 4)), "truncated", "offset of tensor \"w\"")
    }

    /// Every prefix of a valid file fails cleanly; random corruption never traps or hangs.
    func testTruncationAndCorruptionNeverTrap() throws {
        var w = try GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("arr", .array(elementType: 9, [.array(elementType: 8, [.string("ab"), .string("c")])]))
        w.set("n", .u32(7))
        try w.addTensor(name: "a", shape: [2, 32], values: (0..<64).map(Float.init), as: .q8_0)
        try w.addTensor(name: "b", shape: [3], values: [1, 2, 3], as: .f32)
        let bytes = try w.serialized()
        XCTAssertNoThrow(try GGUFFile(storage: storage(bytes), path: "ok"))
        // The last tensor ends 20 bytes before the file does (padding), so cut inside real data only.
        let end = bytes.count - 20
        for n in 0..<end {
            XCTAssertThrowsError(try GGUFFile(storage: storage(Array(bytes.prefix(n))), path: "cut")) {
                XCTAssertTrue($0 is FormatError, "prefix \(n): \($0)")
            }
        }
        var rng = SplitMix64(seed: 42)
        var parsed = 0
        for _ in 0..<3000 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] = rng.next() & 1 == 0 ? UInt8.random(in: 0...255, using: &rng) : b[i] ^ 0x80
            }
            do {
                let g = try GGUFFile(storage: storage(b), path: "fuzz")
                for info in g.tensorInfos { _ = try dequantize(g.tensor(info)) }
                parsed += 1
            } catch is FormatError {
            } catch {
                XCTFail("unexpected error type \(error)")
            }
        }
        print("corruption fuzz: \(parsed) of 3000 mutated files still parsed")
    }
}
