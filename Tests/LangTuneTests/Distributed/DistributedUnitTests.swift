import XCTest
@testable import LangTune

/// The pure parts of data-parallel training: who trains on what, threads per rank, launch detection, the scaling model.
final class DistributedUnitTests: XCTestCase {
    func testEveryExampleOfAStepGoesToExactlyOneRank() {
        let step = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10]]
        for size in 1...5 {
            let shares = (0..<size).map { DataShard.share(of: step, rank: $0, size: size, batchSize: 4) }
            XCTAssertEqual(shares.flatMap { $0.flatMap { $0 } }.sorted(), Array(0...10), "size \(size)")
            for s in shares { XCTAssertTrue(s.allSatisfy { $0.count <= 4 && !$0.isEmpty }, "size \(size): \(s)") }
        }
        XCTAssertEqual(DataShard.share(of: step, rank: 0, size: 1, batchSize: 4), step, "one rank keeps the micro-batches")
        // Dealt in turn across micro-batches, then merged while they fit in a batch.
        XCTAssertEqual(DataShard.share(of: step, rank: 0, size: 2, batchSize: 4), [[0, 2, 4, 6], [8, 10]])
        XCTAssertEqual(DataShard.share(of: step, rank: 1, size: 2, batchSize: 4), [[1, 3, 5], [7, 9]])
        XCTAssertEqual(DataShard.share(of: [[0, 1]], rank: 3, size: 4, batchSize: 2), [], "more ranks than examples")
        XCTAssertEqual(DataShard.share(of: Array(0..<7), rank: 1, size: 3), [1, 4])
    }

    func testThreadsPerRankFollowBindingOrShareTheMachine() {
        XCTAssertEqual(DistributedLaunch.threadsPerRank(allowedCores: 1, onlineCores: 2, localRanks: 2), 1, "bound to one core")
        XCTAssertEqual(DistributedLaunch.threadsPerRank(allowedCores: 32, onlineCores: 32, localRanks: 4), 8)
        XCTAssertEqual(DistributedLaunch.threadsPerRank(allowedCores: 2, onlineCores: 2, localRanks: 4), 1, "oversubscribed")
        XCTAssertEqual(DistributedLaunch.threadsPerRank(allowedCores: 16, onlineCores: 16, localRanks: nil), 16)
    }

    func testLaunchersAreRecognizedFromTheirEnvironment() {
        let ompi = DistributedLaunch(environment: ["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"])
        XCTAssertEqual(ompi, DistributedLaunch(worldSize: 4, localSize: 2, source: "OMPI_COMM_WORLD_SIZE"))
        XCTAssertTrue(ompi.usesMPI(.auto))
        XCTAssertFalse(ompi.usesMPI(.none))
        let slurm = DistributedLaunch(environment: ["PMI_SIZE": "8", "SLURM_NTASKS_PER_NODE": "4"])
        XCTAssertEqual(slurm.worldSize, 8)
        XCTAssertEqual(slurm.localSize, 4)
        XCTAssertTrue(DistributedLaunch(environment: ["PMIX_RANK": "0"]).underLauncher)
        let alone = DistributedLaunch(environment: ["HOME": "/root"])
        XCTAssertFalse(alone.usesMPI(.auto))
        XCTAssertTrue(alone.usesMPI(.mpi))
        XCTAssertEqual(try alone.collective(.auto).size, 1)
    }

    /// The paper model: a ring allreduce's bytes, the busiest rank's compute, a capped speedup.
    func testScalingModelOnPaper() {
        XCTAssertEqual(ScalingModel.gradientBytes(config: .smolLM2_135M, rank: 16), 4 * 4_884_480, "SmolLM2 r16, all seven targets")
        var m = ScalingModel(secondsPerSequence: 1, globalBatch: 8, gradientBytes: 125_000_000)
        m.latency = 0
        XCTAssertEqual(m.bytesPerRank(ranks: 4), 187_500_000)
        XCTAssertEqual(m.allreduceSeconds(ranks: 4, gbps: 10), 0.15, accuracy: 1e-12)
        XCTAssertEqual(m.stepSeconds(ranks: 4, gbps: 10), 2.15, accuracy: 1e-12)
        XCTAssertEqual(m.stepSeconds(ranks: 1, gbps: 10), 8)
        XCTAssertEqual(m.stepSeconds(ranks: 16, gbps: 1e9), 1, accuracy: 1e-6, "no more than one sequence per rank")
        XCTAssertLessThan(m.speedup(ranks: 8, gbps: 10), m.speedup(ranks: 8, gbps: 100))
    }
}
