import XCTest
@testable import LangTune

/// The training workspace across steps of varying length (Q&A batches): shorter steps reuse the
/// longest step's buffers, a longer step replaces them, and the pool never holds two generations.
final class WorkspaceTests: XCTestCase {
    func testStepsOfVaryingLengthShareBuffers() {
        let ws = Workspace()
        func step(tokens: Int) -> [UnsafeMutablePointer<Float>] {
            defer { ws.endStep() }
            return ws.scope {
                // Two "activations" and a temporary per step, sizes proportional to the token count.
                let a = ws.floats(tokens * 576), b = ws.floats(tokens * 1536)
                let t = ws.scope { ws.floats(tokens * 576).pointer }
                return [a.pointer, b.pointer, t]
            }
        }
        let first = step(tokens: 1000)
        let pool1000 = ws.pooledFloats
        XCTAssertGreaterThanOrEqual(pool1000, 2 * 1000 * 576 + 1000 * 1536)
        // Shorter: the same buffers.
        XCTAssertEqual(Set(step(tokens: 900)), Set(first))
        XCTAssertEqual(ws.pooledFloats, pool1000)
        // Longer: its buffers replace the old ones (or reuse them), never a second generation beside them.
        _ = step(tokens: 1300)
        let ideal = Workspace.sizeClass(1300 * 576) * 2 + Workspace.sizeClass(1300 * 1536)
        let pool1300 = ws.pooledFloats
        XCTAssertGreaterThanOrEqual(pool1300, ideal)
        XCTAssertLessThan(pool1300, ideal * 5 / 4)
        // Shorter again: the pool does not grow.
        _ = step(tokens: 1000)
        XCTAssertLessThanOrEqual(ws.pooledFloats, pool1300)
    }
}
