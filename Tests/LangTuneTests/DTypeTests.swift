import XCTest
@testable import LangTune

final class DTypeTests: XCTestCase {
    func testBlockBytes() {
        XCTAssertEqual(DType.q4_1.byteCount(elements: 64), 40)
        XCTAssertNil(DType.q4_1.byteCount(elements: 33))
        XCTAssertEqual(DType.q6_K.byteCount(elements: 256), 210)
    }
}
