import XCTest
@testable import LangTune

/// U+FFFD per maximal ill-formed subpart, as Rust's `from_utf8_lossy` and Python's
/// `bytes.decode("utf-8", "replace")` (expected strings from Python 3.11).
final class UTF8RepairTests: XCTestCase {
    func testMaximalSubparts() {
        let cases: [([UInt8], String)] = [
            ([0x61, 0x80, 0x62], "a\u{FFFD}b"),
            ([0xE0, 0x80], "\u{FFFD}\u{FFFD}"),
            ([0xE2, 0x82], "\u{FFFD}"),
            ([0xE2, 0x82, 0x41], "\u{FFFD}A"),
            ([0xF0, 0x9F, 0x91], "\u{FFFD}"),
            ([0xF0, 0x9F, 0x91, 0xB0], "👰"),
            ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),
            ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),
            ([0xC0, 0xAF], "\u{FFFD}\u{FFFD}"),
            ([0xFF, 0xC2], "\u{FFFD}\u{FFFD}"),
            ([0xA6, 0xAC], "\u{FFFD}\u{FFFD}"),
            ([], ""),
        ]
        for (bytes, want) in cases {
            XCTAssertEqual(Array(UTF8Repair.string(from: bytes).unicodeScalars), Array(want.unicodeScalars), "\(bytes)")
        }
    }
}
