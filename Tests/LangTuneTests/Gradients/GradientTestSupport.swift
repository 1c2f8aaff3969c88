import CLangTuneKernels
import Foundation
import XCTest
@testable import LangTune

/// splitmix64: the tests' random source (and the reference for the dropout mask).
struct GradRNG {
    var state: UInt64

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    mutating func float(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(uniform())
    }

    mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in float(lo, hi) }
    }

    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// `k` distinct indices of 0..<n (all of them when k >= n).
    mutating func sample(_ n: Int, _ k: Int) -> [Int] {
        var all = Array(0..<n)
        if k >= n { return all }
        for i in 0..<k { all.swapAt(i, i + int(n - i)) }
        return Array(all[0..<k])
    }
}

enum GradSeed {
    /// A fresh seed per run (the clock), or LANGTUNE_TEST_SEED to replay a failure.
    static func make() -> UInt64 {
        if let s = ProcessInfo.processInfo.environment["LANGTUNE_TEST_SEED"], let v = UInt64(s) {
            return v
        }
        return UInt64(Date().timeIntervalSince1970 * 1_000_000)
    }
}

func rms(_ e: [Double]) -> Double {
    guard !e.isEmpty else { return 0 }
    return (e.reduce(0) { $0 + $1 * $1 } / Double(e.count)).squareRoot()
}

/// Largest |a - e| / max(|e|, floor) and where it is; a NaN or a count mismatch counts as infinite.
func maxRelError(_ a: [Float], _ e: [Double], floor: Double) -> (error: Double, index: Int) {
    guard a.count == e.count else { return (.infinity, -1) }
    var worst = 0.0, at = 0
    for i in 0..<a.count {
        let d = abs(Double(a[i]) - e[i]) / max(abs(e[i]), floor)
        if !(d <= worst) {  // also catches NaN
            worst = d.isNaN ? .infinity : d
            at = i
            if d.isNaN { break }
        }
    }
    return (worst, at)
}

/// Fails when some element of `actual` is off by more than `rel` relative to
/// max(|expected|, floor); floor defaults to the RMS of `expected` (errors of
/// elements that come out near zero by cancellation scale with the inputs).
func assertClose(
    _ actual: [Float], _ expected: [Double], rel: Double, floor: Double? = nil, _ label: String,
    seed: UInt64, file: StaticString = #filePath, line: UInt = #line
) {
    let fl = max(floor ?? rms(expected), 1e-300)
    let (err, i) = maxRelError(actual, expected, floor: fl)
    if !(err <= rel) {
        let got = i >= 0 && i < actual.count ? "\(actual[i])" : "count \(actual.count)"
        let want = i >= 0 && i < expected.count ? "\(expected[i])" : "count \(expected.count)"
        XCTFail(
            "\(label): relative error \(err) > \(rel) at \(i): got \(got), want \(want) "
                + "(seed \(seed); rerun with LANGTUNE_TEST_SEED=\(seed))", file: file, line: line)
    }
}

/// Central differences of f at the given coordinates of x.
func centralDifference(
    _ x: [Double], at indices: [Int], h: Double = 1e-6, _ f: ([Double]) -> Double
) -> [Double] {
    indices.map { i in
        var xp = x, xm = x
        xp[i] += h
        xm[i] -= h
        return (f(xp) - f(xm)) / (2 * h)
    }
}

func doubles(_ x: [Float]) -> [Double] { x.map(Double.init) }

func dot(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += a[i] * b[i] }
    return s
}

/// Runs `body` on every kernel tier this CPU runs (portable first), naming the tier.
func forEachKernelPath(_ body: (String) throws -> Void) rethrows {
    try CPUTier.forEachRunnable { try body($0.name) }
}

func withOptionalPointer<T, R>(_ a: [T]?, _ body: (UnsafePointer<T>?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// The checker itself must notice a small error, or every test above it could pass vacuously.
final class GradientsCheckerTests: XCTestCase {
    func testCheckerFlagsSmallErrorsAndNaN() {
        let e: [Double] = [1, -2, 3, 0.5]
        XCTAssertLessThan(maxRelError(e.map { Float($0) }, e, floor: 1).error, 1e-7)
        XCTAssertGreaterThan(maxRelError([1, -2, 3.0001, 0.5], e, floor: rms(e)).error, 1e-5)
        XCTAssertEqual(maxRelError([1, .nan, 3, 0.5], e, floor: 1).error, .infinity)
        XCTAssertEqual(maxRelError([1, 2, 3], e, floor: 1).error, .infinity)
    }
}
