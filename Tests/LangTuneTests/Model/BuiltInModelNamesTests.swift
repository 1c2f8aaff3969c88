import Foundation
import XCTest
@testable import LangTune

/// `--model default | smollm2-135m | gemma3-270m` name the files `scripts/fetch-models.sh` downloads;
/// anything else is a path, and an existing file or folder of a built-in name stays a path.
final class BuiltInModelNamesTests: XCTestCase {
    func testNamesResolveToTheDownloadedFiles() throws {
        let smol = try TestPaths.require(TestPaths.smolLM2GGUF)
        let gemma = try TestPaths.require(TestPaths.gemma3GGUF)
        XCTAssertEqual(try LangTuneHome.resolve("default"), smol.path)
        XCTAssertEqual(try LangTuneHome.resolve("smollm2-135m"), smol.path)
        XCTAssertEqual(try LangTuneHome.resolve("gemma3-270m"), gemma.path)
        XCTAssertEqual(try LangTuneHome.resolve("runs/model.gguf"), "runs/model.gguf")
        XCTAssertEqual(try LangTuneHome.resolve("Gemma3-270M"), "Gemma3-270M", "names are exact")
    }

    /// A folder in the working directory named like a built-in model is what the user meant.
    func testAnExistingPathWinsOverAName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("names-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("gemma3-270m"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let here = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir.path))
        defer { FileManager.default.changeCurrentDirectoryPath(here) }
        XCTAssertEqual(try LangTuneHome.resolve("gemma3-270m"), "gemma3-270m")
    }
}
