import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// The real SmolLM2-135M-Instruct GGUF against transformers' float32 run on the
/// same dequantized weights (fixture: Tests/Reference/model_fixtures.py).
final class SmolLM2ParityTests: XCTestCase {
    struct Fixture: Decodable { var cases: [ParityCase] }

    func testMatchesTransformers() throws {
        let model = try TestPaths.require(TestPaths.smolLM2GGUF)
        let data = try Data(contentsOf: TestPaths.fixture("model/smollm2.json"))
        let fixture = try JSONDecoder().decode(Fixture.self, from: data)
        XCTAssertGreaterThanOrEqual(fixture.cases.filter { $0.messages != nil }.count, 6)
        let lm = try LanguageModel(model.path)
        for c in fixture.cases {
            try assertMatchesReference(lm, c, eos: lm.stopTokenIds)
        }
    }

    /// The portable kernels (no SIMD tier, no oneDNN, no quantized matvec) give the same answer.
    func testPortablePathMatchesToo() throws {
        let model = try TestPaths.require(TestPaths.smolLM2GGUF)
        let data = try Data(contentsOf: TestPaths.fixture("model/smollm2.json"))
        let c = try JSONDecoder().decode(Fixture.self, from: data).cases[0]
        lt_set_simd_enabled(0); lt_set_dnnl_enabled(0)
        defer { lt_set_simd_enabled(1); lt_set_dnnl_enabled(1) }
        let lm = try LanguageModel(model.path, backend: CPUBackend(quantizedMatvec: false))
        try assertMatchesReference(lm, c, eos: lm.stopTokenIds)
    }

    /// Every kernel tier this CPU runs (AVX2 on an AVX-512 machine too), with the quantized matrix-vector
    /// products of generation, gives transformers' answer.
    func testEveryTierMatchesToo() throws {
        let model = try TestPaths.require(TestPaths.smolLM2GGUF)
        let data = try Data(contentsOf: TestPaths.fixture("model/smollm2.json"))
        let c = try JSONDecoder().decode(Fixture.self, from: data).cases[0]
        let lm = try LanguageModel(model.path)
        try CPUTier.forEachRunnable { tier in
            print("SmolLM2 parity on the \(tier) tier")
            try assertMatchesReference(lm, c, eos: lm.stopTokenIds)
        }
    }
}
