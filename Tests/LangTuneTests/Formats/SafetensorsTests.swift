import Foundation
import XCTest
@testable import LangTune

final class SafetensorsTests: XCTestCase {
    /// A file with the given header text (padded to 8) and `data` bytes.
    func raw(_ header: String, data: Int) -> [UInt8] {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var r = RawBytes()
        r.u64(UInt64(h.count))
        r.raw(h)
        r.raw((0..<data).map { UInt8(truncatingIfNeeded: $0) })
        return r.bytes
    }

    func check(_ bytes: [UInt8], _ contains: String..., line: UInt = #line) {
        assertFormatError(try SafetensorsFile(storage: storage(bytes), path: "bad.safetensors"), file: "bad.safetensors",
                          contains: contains, line: line)
    }

    func testHeaderLayoutMatchesReference() throws {
        var w = SafetensorsWriter(metadata: ["format": "pt"])
        try w.addTensor(name: "b", shape: [2], values: [1, 2], as: .f16)
        try w.addTensor(name: "a", shape: [1, 2], values: [3, 4])
        let bytes = try w.serialized()
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        XCTAssertEqual(n % 8, 0)
        let header = String(decoding: bytes[8..<8 + n], as: UTF8.self)
        // F32 (4-byte elements) before F16, then by name; compact JSON; space padding.
        let json = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}"#
        XCTAssertEqual(header.trimmingCharacters(in: .whitespaces), json)
        XCTAssertEqual(header.count, (json.count + 7) / 8 * 8)
        XCTAssertEqual(bytes.count, 8 + n + 12)
        XCTAssertEqual(Array(bytes[(8 + n)...]), [0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0x00, 0x3C, 0x00, 0x40])
    }

    func testRoundTripAllDTypes() throws {
        let dir = try makeTempDir()
        let path = dir.appendingPathComponent("t.safetensors").path
        var w = SafetensorsWriter(metadata: ["format": "pt", "note": "quote \" and \\ and \n and é"])
        let f: [Float] = [0.1, -2.5, 3e-5, 65504, -0, 1e10]
        try w.addTensor(name: "f32", shape: [2, 3], values: f)
        try w.addTensor(name: "f16", shape: [6], values: f, as: .f16)
        try w.addTensor(name: "bf16", shape: [3, 2], values: f, as: .bf16)
        try w.addTensor(name: "f64", shape: [2], dtype: .f64, bytes: ([1.5, -2.0] as [Double]).withUnsafeBytes { Array($0) })
        try w.addTensor(name: "i8", shape: [3], dtype: .i8, bytes: [0xFF, 1, 0x80])
        try w.addTensor(name: "u8", shape: [2], dtype: .u8, bytes: [200, 7])
        try w.addTensor(name: "i32", shape: [1], dtype: .i32, bytes: [0xFE, 0xFF, 0xFF, 0xFF])
        try w.addTensor(name: "i64", shape: [], dtype: .i64, bytes: [5, 0, 0, 0, 0, 0, 0, 0])
        try w.addTensor(name: "bool", shape: [2], dtype: .bool, bytes: [1, 0])
        try w.addTensor(name: "empty", shape: [0, 4], dtype: .f32, bytes: [])
        try w.addTensor(name: "名前 \"x\"", shape: [1], values: [7])
        try w.write(to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["t.safetensors"])

        let s = try SafetensorsFile(path: path)
        XCTAssertEqual(s.metadata, ["format": "pt", "note": "quote \" and \\ and \n and é"])
        XCTAssertEqual(s.dataOffset % 8, 0)
        XCTAssertEqual(Set(s.tensorNames), ["f32", "f16", "bf16", "f64", "i8", "u8", "i32", "i64", "bool", "empty", "名前 \"x\""])
        XCTAssertEqual(try dequantize(s.tensor("f32")), f)
        XCTAssertEqual(try s.tensor("f32").shape, [2, 3])
        XCTAssertEqual(try dequantize(s.tensor("f16")), f.map { Float16Bits.toFloat(Float16Bits.fromFloat($0)) })
        XCTAssertEqual(try dequantize(s.tensor("bf16")), f.map { BFloat16Bits.toFloat(BFloat16Bits.fromFloat($0)) })
        XCTAssertEqual(try dequantize(s.tensor("f64")), [1.5, -2])
        XCTAssertEqual(try dequantize(s.tensor("i8")), [-1, 1, -128])
        XCTAssertEqual(try s.tensor("u8").dtype, .u8)
        XCTAssertEqual(try dequantize(s.tensor("u8")), [200, 7])
        XCTAssertEqual(try dequantize(s.tensor("i32")), [-2])
        XCTAssertEqual(try s.tensor("i64").shape, [])
        XCTAssertEqual(try dequantize(s.tensor("i64")), [5])
        XCTAssertEqual(try dequantize(s.tensor("bool")), [1, 0])
        XCTAssertEqual(try s.tensor("empty").byteCount, 0)
        XCTAssertEqual(try dequantize(s.tensor("名前 \"x\"")), [7])

        // Copying every tensor into a new writer gives an identical file.
        var w2 = SafetensorsWriter(metadata: s.metadata)
        for t in s.tensors { try w2.addTensor(t) }
        XCTAssertEqual(try w2.serialized(), [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        // No metadata: no __metadata__ key.
        var w3 = SafetensorsWriter()
        try w3.addTensor(name: "x", shape: [1], values: [1])
        XCTAssertNil(try SafetensorsFile(storage: storage(w3.serialized()), path: "m").metadata)
    }

    func testWriterRejectsBadInput() throws {
        var w = SafetensorsWriter()
        try w.addTensor(name: "x", shape: [1], values: [1])
        assertFormatError(try w.addTensor(name: "x", shape: [1], values: [1]), contains: ["added twice"])
        assertFormatError(try w.addTensor(name: "__metadata__", shape: [1], values: [1]), contains: ["reserved"])
        assertFormatError(try w.addTensor(name: "q", shape: [32], dtype: .q8_0, bytes: [UInt8](repeating: 0, count: 34)), contains: ["cannot hold Q8_0"])
        assertFormatError(try w.addTensor(name: "s", shape: [3], dtype: .f32, bytes: [0, 0, 0, 0]), contains: ["do not hold"])
        assertFormatError(try w.addTensor(name: "n", shape: [1], values: [1], as: .q4_0), contains: ["F32, F16 or BF16"])
    }

    func testErrors() {
        check([1, 2, 3], "only 3 bytes")
        var r = RawBytes(); r.u64(1000); r.raw(Array("{}".utf8))
        check(r.bytes, "header length 1000 runs past the end")
        r = RawBytes(); r.u64(.max); r.raw(Array("{}      ".utf8))
        check(r.bytes, "runs past the end")
        check(raw("[1,2]", data: 0), "not a JSON object")
        check(raw("{\"a\": {\"dtype\": \"F32\"", data: 0), "not valid safetensors JSON")
        check(raw(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: 8), "missing key \"data_offsets\"")
        check(raw(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, data: 8), "not valid safetensors JSON")
        check(raw(#"{"__metadata__":{"k":1}}"#, data: 0), "not valid safetensors JSON")
        check(raw(#"{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, data: 2), "unsupported dtype \"F8_E4M3\"")
        check(raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: 4), "spans 4 bytes", "needs 8")
        check(raw(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: 8), "invalid shape")
        check(raw(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, data: 8), "invalid shape")
        check(raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: 8), "invalid data_offsets")
        check(raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}"#, data: 8), "expected [begin, end]")
        check(raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: 8), "runs past the end")
        check(raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "overlaps")
        check(raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "gap", "0..<4")
        check(raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 8), "cover only 4")
        r = RawBytes(); r.u64(200_000_000); r.raw([UInt8](repeating: 0x20, count: 8))
        check(r.bytes, "runs past the end")
    }

    func testShardedCheckpoint() throws {
        let dir = try makeTempDir()
        func shard(_ name: String, _ tensors: [(String, [Float])]) throws {
            var w = SafetensorsWriter(metadata: ["format": "pt"])
            for (n, v) in tensors { try w.addTensor(name: n, shape: [v.count], values: v) }
            try w.write(to: dir.appendingPathComponent(name).path)
        }
        try shard("model-00001-of-00002.safetensors", [("a", [1, 2]), ("b", [3])])
        try shard("model-00002-of-00002.safetensors", [("c", [4, 5, 6])])
        func index(_ map: [String: String]) throws -> String {
            let path = dir.appendingPathComponent("model.safetensors.index.json").path
            let data = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 24], "weight_map": map])
            try data.write(to: URL(fileURLWithPath: path))
            return path
        }
        let s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors"
        let ok = try SafetensorsCheckpoint(path: index(["a": s1, "b": s1, "c": s2]))
        XCTAssertEqual(ok.files.count, 2)
        XCTAssertEqual(Set(ok.tensors.keys), ["a", "b", "c"])
        XCTAssertEqual(try dequantize(ok.tensors["c"]!), [4, 5, 6])
        XCTAssertEqual(ok.fileOfTensor["c"], dir.appendingPathComponent(s2).path)

        assertFormatError(try SafetensorsCheckpoint(path: index(["a": s1, "c": s1])), file: dir.appendingPathComponent(s1).path,
                          contains: ["tensor \"c\"", "missing from this shard"])
        assertFormatError(try SafetensorsCheckpoint(path: index(["a": "../x.safetensors"])), contains: ["not a file name in the same folder"])
        assertFormatError(try SafetensorsCheckpoint(path: index(["a": "missing.safetensors"])), contains: ["no such file"])
        assertFormatError(try SafetensorsCheckpoint(path: index([:])), contains: ["lists no tensors"])
        try shard(s2, [("a", [4, 5, 6])])
        assertFormatError(try SafetensorsCheckpoint(path: index(["c": s2, "a": s1])), contains: ["tensor \"c\"", "missing from this shard"])
        assertFormatError(try SafetensorsCheckpoint(path: index(["a": s2, "b": s1])), contains: ["tensor \"a\" is also in"])
        let bad = dir.appendingPathComponent("bad.index.json").path
        try Data("{\"weight_map\": 3}".utf8).write(to: URL(fileURLWithPath: bad))
        assertFormatError(try SafetensorsCheckpoint(path: bad), file: bad, contains: ["not a safetensors index"])
    }
}

final class MappedFileTests: XCTestCase {
    func testMapsAndReportsProblems() throws {
        let dir = try makeTempDir()
        let file = dir.appendingPathComponent("f.bin").path
        try Data([1, 2, 3, 250]).write(to: URL(fileURLWithPath: file))
        let s = try MappedFile.map(file)
        XCTAssertEqual(Array(s.buffer), [1, 2, 3, 250])
        assertFormatError(try MappedFile.map(dir.appendingPathComponent("none").path), file: dir.appendingPathComponent("none").path, contains: ["no such file"])
        assertFormatError(try MappedFile.map(dir.path), file: dir.path, contains: ["is a directory"])
        let empty = dir.appendingPathComponent("empty").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        assertFormatError(try MappedFile.map(empty), file: empty, contains: ["empty"])
        assertFormatError(try GGUFFile(path: empty), file: empty, contains: ["empty"])
        assertFormatError(try SafetensorsFile(path: dir.path), file: dir.path, contains: ["directory"])
    }
}
