import Foundation
import XCTest
@testable import LangTune

final class DataBatchPlanTests: XCTestCase {
    func lengths(_ n: Int, seed: UInt64) -> [Int] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in 10 + Int(g.next() % 491) }
    }

    func testSameInputsSamePlanAndEpochsDiffer() throws {
        let l = lengths(500, seed: 1)
        for group in [true, false] {
            let a = BatchPlan(lengths: l, batchSize: 8, seed: 42, epoch: 3, groupByLength: group)
            XCTAssertEqual(a, BatchPlan(lengths: l, batchSize: 8, seed: 42, epoch: 3, groupByLength: group))
            XCTAssertNotEqual(a.batches, BatchPlan(lengths: l, batchSize: 8, seed: 42, epoch: 4, groupByLength: group).batches)
            XCTAssertNotEqual(a.batches, BatchPlan(lengths: l, batchSize: 8, seed: 43, epoch: 3, groupByLength: group).batches)
            let decoded = try JSONDecoder().decode(BatchPlan.self, from: JSONEncoder().encode(a))
            XCTAssertEqual(decoded, a)
        }
    }

    func testEveryIndexExactlyOncePerEpoch() {
        for (n, bs) in [(0, 4), (1, 4), (7, 3), (1000, 8), (333, 1), (5000, 16), (10, 100)] {
            for group in [true, false] {
                let plan = BatchPlan(lengths: lengths(n, seed: UInt64(n)), batchSize: bs, seed: 9, epoch: 0, groupByLength: group)
                XCTAssertEqual(plan.batches.flatMap { $0 }.sorted(), Array(0..<n), "n \(n) bs \(bs)")
                XCTAssertTrue(plan.batches.allSatisfy { !$0.isEmpty && $0.count <= bs })
                let short = plan.batches.filter { $0.count < bs }.count
                let megas = (n + 50 * bs - 1) / (50 * bs)
                XCTAssertLessThanOrEqual(short, group ? megas : 1, "only the last batch of a mega-batch may be short")
            }
        }
        XCTAssertEqual(BatchPlan(lengths: [3, 1, 2], batchSize: 0, seed: 1, epoch: 0).batchSize, 1)
    }

    func testLengthGroupingCutsPadding() {
        let l = lengths(4000, seed: 7)
        let grouped = BatchPlan(lengths: l, batchSize: 16, seed: 5, epoch: 0)
        let random = BatchPlan(lengths: l, batchSize: 16, seed: 5, epoch: 0, groupByLength: false)
        let g = grouped.paddingFraction(lengths: l), r = random.paddingFraction(lengths: l)
        print("padding: grouped \(g), random \(r)")
        XCTAssertGreaterThan(r, 0.35, "uniform lengths in 10...500 padded to the batch maximum")
        XCTAssertLessThan(g, 0.05)
        // The batch with the longest sequence comes first.
        XCTAssertEqual(grouped.batches[0].map { l[$0] }.max(), l.max())
        // Batches are not simply in length order.
        let maxima = grouped.batches.map { $0.map { l[$0] }.max()! }
        XCTAssertNotEqual(Array(maxima.dropFirst()), Array(maxima.dropFirst()).sorted(by: >))
    }

    func testShuffleIsUniform() {
        var counts: [[Int]: Int] = [:]
        var rng = SplitMix64(seed: 123)
        for _ in 0..<24_000 {
            var a = [0, 1, 2, 3]
            BatchPlan.shuffle(&a, &rng)
            counts[a, default: 0] += 1
        }
        XCTAssertEqual(counts.count, 24)
        for (perm, c) in counts { XCTAssertEqual(Double(c), 1000, accuracy: 130, "\(perm)") }
        var g = SplitMix64(seed: 1)
        var hist = [Int](repeating: 0, count: 3)
        for _ in 0..<30_000 { hist[BatchPlan.uniform(below: 3, &g)] += 1 }
        for h in hist { XCTAssertEqual(Double(h), 10_000, accuracy: 300) }
    }

    func testValidationSplit() {
        var examples: [TokenizedExample] = []
        for p in 0..<40 { for q in 0..<3 { examples.append(TokenizedExample(ids: [1, 2], labels: [1, 2], origin: "f.json:data[0].paragraphs[\(p)].qas[\(q)]")) } }
        for d in 0..<20 { examples.append(TokenizedExample(ids: [Int32(d)], labels: [Int32(d)], origin: "c.txt:line \(d)")) }
        let (train, val) = BatchPlan.split(examples, fraction: 0.1, seed: 11)
        let again = BatchPlan.split(examples, fraction: 0.1, seed: 11)
        XCTAssertEqual(train, again.train)
        XCTAssertEqual(val, again.validation)
        XCTAssertNotEqual(val, BatchPlan.split(examples, fraction: 0.1, seed: 12).validation)
        XCTAssertEqual(train.count + val.count, examples.count)
        XCTAssertEqual(val.count, 14, accuracy: 2, "10% of 140, in whole groups of up to 3")
        XCTAssertTrue(Set(train.map(\.origin)).isDisjoint(with: val.map(\.origin)))
        // Questions about one paragraph stay on one side.
        let valParagraphs = Set(val.map { BatchPlan.splitGroup(of: $0.origin) })
        XCTAssertTrue(train.allSatisfy { !valParagraphs.contains(BatchPlan.splitGroup(of: $0.origin)) })
        XCTAssertEqual(BatchPlan.splitGroup(of: "f.json:data[0].paragraphs[3].qas[12]"), "f.json:data[0].paragraphs[3]")
        XCTAssertEqual(BatchPlan.splitGroup(of: "f.json:line 3"), "f.json:line 3")
        // Input order is kept.
        XCTAssertEqual(train.map(\.origin), examples.map(\.origin).filter { o in train.contains { $0.origin == o } })
        XCTAssertEqual(BatchPlan.split(examples, fraction: 0, seed: 1).validation, [])
        XCTAssertEqual(BatchPlan.split(examples, fraction: .nan, seed: 1).validation, [])
        let most = BatchPlan.split(examples, fraction: 1, seed: 1)
        XCTAssertTrue([1, 3].contains(most.train.count), "one group stays for training")
        // Windows of one document share an origin: with a single group, examples split one by one.
        let windows = (0..<10).map { TokenizedExample(ids: [Int32($0)], labels: [Int32($0)], origin: "doc.txt:line 1") }
        let (wt, wv) = BatchPlan.split(windows, fraction: 0.2, seed: 3)
        XCTAssertEqual([wt.count, wv.count], [8, 2])
    }
}
