import Foundation
import XCTest
@testable import LangTune

/// Where tests find fixtures, the real model files and the shared data sets.
///
/// Real files that a fresh clone lacks (the default model, Llama 3's tokenizer,
/// `../shared/data`) make a test skip with a message, unless
/// `LANGTUNE_REQUIRE_MODELS=1` (set by `.ci/run`), where a missing file fails.
enum TestPaths {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repoRoot.appendingPathComponent("Tests/Fixtures")
    static var langtuneHome: URL { LangTuneHome.url }
    static var smolLM2GGUF: URL { LangTuneHome.defaultModel }
    static var gemma3GGUF: URL { langtuneHome.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf") }
    static var llama3TokenizerJSON: URL { langtuneHome.appendingPathComponent("tokenizers/llama3/tokenizer.json") }
    static var sharedData: URL { repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data") }

    static var requireReal: Bool { ProcessInfo.processInfo.environment["LANGTUNE_REQUIRE_MODELS"] == "1" }

    /// Returns `url` if it exists; otherwise skips the test (or fails it when real files are required).
    static func require(_ url: URL, hint: String = "run scripts/fetch-models.sh") throws -> URL {
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let message = "\(url.path) is absent (\(hint))"
        if requireReal { XCTFail(message); throw XCTSkip(message) }
        throw XCTSkip(message)
    }

    static func fixture(_ relative: String) -> URL { fixtures.appendingPathComponent(relative) }
}
