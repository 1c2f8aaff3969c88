import Foundation
import XCTest
@testable import LangTune

/// A tiny random Llama-3-shaped model in Hugging Face safetensors form, with
/// Llama 3's real tokenizer, against transformers (Tests/Reference/tiny_llama3.py).
/// The weights come from a seeded generator both sides implement, so no
/// weights are committed: the test writes the folder, then loads it like a user's.
final class TinyLlama3Tests: XCTestCase {
    struct TensorSpec: Decodable { var name: String; var shape: [Int]; var scale: Double; var center: Double }
    struct Fixture: Decodable {
        var config: [String: JSONValue]
        var tokenizer_config: [String: JSONValue]
        var tensors: [TensorSpec]
        var cases: [ParityCase]
    }

    /// Generator v1 (see Tests/Reference/tiny_llama3.py): SplitMix64 seeded by FNV-1a of the name.
    static func values(name: String, count: Int, scale: Double, center: Double) -> [Float] {
        var seed: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { seed = (seed ^ UInt64(b)) &* 0x100_0000_01b3 }
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            let u = Double(rng.next() >> 40) / Double(1 << 24)
            return Float((2 * u - 1) * scale + center)
        }
    }

    func makeModelFolder() throws -> (URL, Fixture) {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: TestPaths.fixture("model/tiny_llama3.json")))
        return (try AdapterTestSupport.tinyLlama3Folder(), fixture)
    }

    func testMatchesTransformers() throws {
        let (dir, fixture) = try makeModelFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lm = try LanguageModel(dir.path)
        XCTAssertEqual(lm.files.config.ropeScaling?.type, "llama3")
        XCTAssertEqual(lm.files.config.numKVHeads, 2)
        for c in fixture.cases {
            try assertMatchesReference(lm, c, eos: lm.stopTokenIds)
        }
    }
}

/// Any JSON value, to carry config objects from a fixture into files unchanged.
enum JSONValue: Decodable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
    var any: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return b
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? (Int(n) as Any) : (n as Any)
        case .string(let s): return s
        case .array(let a): return a.map(\.any)
        case .object(let o): return o.mapValues(\.any)
        }
    }
}
