import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// QLoRA's NF4 base on disk: bitsandbytes-layout folders read back as models, and the quantized
/// cache that is used when its checksums hold and rebuilt, with the reason, when they do not.
final class QuantizedCacheTests: XCTestCase {
    /// XXH64 test vectors from the `xxhash` package on PyPI (3.x, `xxhash.xxh64(data, seed).hexdigest()`).
    func testXXH64MatchesTheReference() {
        let cases: [([UInt8], UInt64, UInt64)] = [
            ([], 0, 0xef46db3751d8e999), ([], 7, 0x95f0626f6f0a4409),
            (Array("abc".utf8), 0, 0x44bc2cf5ad770999), (Array("abc".utf8), 7, 0x9e755206156676d7),
            (Array(repeating: UInt8(ascii: "a"), count: 31), 0, 0xfe47067cda802916),
            (Array(repeating: UInt8(ascii: "a"), count: 31), 7, 0x7684245686935331),
            (Array(String(repeating: "0123456789", count: 10).utf8), 0, 0xf80e7b96315afffa),
            (Array(String(repeating: "0123456789", count: 10).utf8), 7, 0xa314a8f85da8c7d1),
        ]
        for (bytes, seed, want) in cases {
            let got = bytes.withUnsafeBytes { lt_xxh64($0.baseAddress, Int64($0.count), seed) }
            XCTAssertEqual(got, want, "\(bytes.count) bytes, seed \(seed)")
        }
    }

    func tempDir(_ name: String) throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func testCacheIsUsedCheckedAndRebuilt() throws {
        let files = try ModelFiles.load(try TestPaths.require(TestPaths.smolLM2GGUF).path)
        let root = try tempDir("nf4cache")
        defer { try? FileManager.default.removeItem(at: root) }
        let q = FrozenQuantization(cacheDirectory: root.path)
        let cache = QuantizedBaseCache(root: root.path)
        let threads = Threads(2)

        let first = try cache.weights(for: files, quantization: q, threads: threads)
        guard case .built(let dir) = first.outcome else { return XCTFail("first run: \(first.outcome)") }
        XCTAssertEqual(first.nf4.count, 30 * 7)
        let name = "model.layers.3.mlp.down_proj.weight"
        let direct = NF4Tensor.quantize(try dequantize(files.tensors[name]!), shape: [576, 1536])
        XCTAssertEqual(first.nf4[name]!.packed, direct.packed)
        XCTAssertEqual(first.nf4[name]!.scales, direct.scales)

        let second = try cache.weights(for: files, quantization: q, threads: threads)
        XCTAssertEqual(second.outcome, .hit(dir))
        for (n, t) in first.nf4 { XCTAssertEqual(second.nf4[n]?.checksum, t.checksum, n) }

        let weights = URL(fileURLWithPath: dir).appendingPathComponent("model.safetensors")
        let manifest = URL(fileURLWithPath: dir).appendingPathComponent("langtune-nf4-cache.json")
        func expectRebuilt(_ label: String, reason: String, _ damage: () throws -> Void) throws {
            try damage()
            let r = try cache.weights(for: files, quantization: q, threads: threads)
            guard case .rebuilt(let d, let why) = r.outcome else { return XCTFail("\(label): \(r.outcome)") }
            XCTAssertEqual(d, dir)
            XCTAssertTrue(why.contains(reason), "\(label): \(why)")
            XCTAssertEqual(r.nf4[name]?.checksum, direct.checksum, label)
            XCTAssertEqual(try cache.weights(for: files, quantization: q, threads: threads).outcome, .hit(dir), "\(label): rewritten")
        }
        try expectRebuilt("one flipped bit", reason: "fails its checksum") {
            let h = try FileHandle(forUpdating: weights)
            let size = try h.seekToEnd()
            try h.seek(toOffset: size / 2)
            var b = try XCTUnwrap(h.readData(ofLength: 1))
            b[0] ^= 1
            try h.seek(toOffset: size / 2)
            h.write(b)
            try h.close()
        }
        try expectRebuilt("truncated", reason: "model.safetensors") {
            let h = try FileHandle(forUpdating: weights)
            try h.truncate(atOffset: 1_000_000)
            try h.close()
        }
        try expectRebuilt("another source", reason: "another source") {
            var text = try String(contentsOf: manifest, encoding: .utf8)
            text = text.replacingOccurrences(of: "nf4 blocksize=64", with: "nf4 blocksize=32")
            try text.write(to: manifest, atomically: true, encoding: .utf8)
        }
        try expectRebuilt("no manifest", reason: "missing or unreadable") { try FileManager.default.removeItem(at: manifest) }

        // Keeping the GGUF's own blocks quantizes nothing, so nothing is cached.
        let kept = try cache.weights(for: files, quantization: FrozenQuantization(keepSourceBlocks: true, cacheDirectory: root.path),
                                     threads: threads)
        XCTAssertNil(kept.outcome)
        XCTAssertTrue(kept.nf4.isEmpty)

        // Other settings are another cache entry, not a rebuild of this one.
        var plain = q
        plain.doubleQuant = false
        let other = try cache.weights(for: files, quantization: plain, threads: threads)
        guard case .built(let dir2) = other.outcome else { return XCTFail("plain scales: \(other.outcome)") }
        XCTAssertNotEqual(dir2, dir)
        XCTAssertFalse(other.nf4[name]!.doubleQuantized)
    }

    /// The folder `langtune quantize` writes is a model LangTune loads: the same NF4 weights, and the
    /// logits of the in-memory QLoRA base.
    func testNF4FolderLoadsAsTheQuantizedModel() throws {
        let path = try TestPaths.require(TestPaths.smolLM2GGUF).path
        let dir = try tempDir("nf4folder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try ModelFiles.load(path)
        try ModelExporter(files: files, adapter: nil).writeHF(to: dir.path, dtype: .f32, quantization: FrozenQuantization())
        let folder = try ModelFiles.load(dir.path)
        XCTAssertEqual(folder.nf4.count, 30 * 7)
        XCTAssertNil(folder.tensors["model.layers.0.self_attn.q_proj.weight"])
        XCTAssertNil(folder.tensors["model.layers.0.self_attn.q_proj.weight.absmax"])
        XCTAssertEqual(folder.parameterCount, files.parameterCount)
        let name = "model.layers.7.self_attn.k_proj.weight"
        XCTAssertEqual(folder.nf4[name]!.checksum, NF4Tensor.quantize(try dequantize(files.tensors[name]!), shape: [192, 576]).checksum)

        let fromFolder = try LanguageModel(dir.path)
        let inMemory = try LanguageModel(path, quantization: FrozenQuantization())
        let ids = try inMemory.promptIds("Ankara hangi ülkenin başkentidir?", chat: true)
        let a = fromFolder.model.forward(ids, cache: KVCache(config: fromFolder.model.config, capacity: ids.count), logits: .last)
        let b = inMemory.model.forward(ids, cache: KVCache(config: inMemory.model.config, capacity: ids.count), logits: .last)
        let scale = b.map(abs).max()!
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()! / scale, 1e-6)
    }

    /// Broken 4-bit state dicts are refused with the file, the tensor and the problem named.
    func testBrokenStateDictsAreRefused() throws {
        let q = NF4Tensor.quantize((0..<256).map { Float($0 % 17) - 8 }, shape: [4, 64])
        func tensor(_ name: String, _ dtype: DType, _ bytes: [UInt8], _ shape: [Int]) -> WeightTensor {
            WeightTensor(name: name, shape: shape, dtype: dtype, storage: ByteStorage(copying: bytes), offset: 0, byteCount: bytes.count)
        }
        func f32(_ a: [Float]) -> [UInt8] { a.withUnsafeBytes { Array($0) } }
        guard case .double(let codes, let nested, let offset, _) = q.scales else { return XCTFail() }
        let state = #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, 64], "nested_blocksize": 256, "nested_offset": \#(offset)}"#
        let w = "model.layers.0.mlp.up_proj.weight"
        let good: [String: WeightTensor] = [
            w: tensor(w, .u8, q.packed, [128, 1]),
            w + ".absmax": tensor(w + ".absmax", .u8, codes, [codes.count]),
            w + ".nested_absmax": tensor(w + ".nested_absmax", .f32, f32(nested), [nested.count]),
            w + ".quant_map": tensor(w + ".quant_map", .f32, f32(BitsAndBytes.nf4Code), [16]),
            w + ".nested_quant_map": tensor(w + ".nested_quant_map", .f32, f32(BitsAndBytes.dynamicMap), [256]),
            w + ".quant_state.bitsandbytes__nf4": tensor(w + ".quant_state.bitsandbytes__nf4", .u8, Array(state.utf8), [state.utf8.count]),
            "model.norm.weight": tensor("model.norm.weight", .f32, f32([1, 2]), [2]),
        ]
        let (nf4, rest) = try BitsAndBytesNF4.extract(good) { _ in "m.safetensors" }
        XCTAssertEqual(nf4[w]?.checksum, q.checksum)
        XCTAssertEqual(Array(rest.keys), ["model.norm.weight"])

        func expectError(_ contains: String, _ change: (inout [String: WeightTensor]) -> Void) {
            var t = good
            change(&t)
            XCTAssertThrowsError(try BitsAndBytesNF4.extract(t) { _ in "m.safetensors" }) { e in
                let s = "\(e)"
                XCTAssertTrue(s.hasPrefix("m.safetensors: 4-bit weight \"\(w)\""), s)
                XCTAssertTrue(s.contains(contains), s)
            }
        }
        expectError("expected 128 U8 values") { $0[w] = tensor(w, .u8, Array(q.packed.prefix(100)), [100, 1]) }
        expectError("missing \"\(w).nested_quant_map\"") { $0[w + ".nested_quant_map"] = nil }
        expectError("not bitsandbytes' NF4 code book") {
            var code = BitsAndBytes.nf4Code
            code[3] += 0.01
            $0[w + ".quant_map"] = tensor(w + ".quant_map", .f32, f32(code), [16])
        }
        expectError("fp4") {
            let fp4 = state.replacingOccurrences(of: "\"nf4\"", with: "\"fp4\"")
            $0[w + ".quant_state.bitsandbytes__nf4"] = tensor(w + ".quant_state.bitsandbytes__nf4", .u8, Array(fp4.utf8), [fp4.utf8.count])
        }
        expectError("not a JSON object") {
            $0[w + ".quant_state.bitsandbytes__nf4"] = tensor(w + ".quant_state.bitsandbytes__nf4", .u8, Array("{oops".utf8), [5])
        }
    }
}
