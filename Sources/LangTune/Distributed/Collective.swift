import Foundation

/// The few collective operations data-parallel training needs, over the processes
/// ("ranks") of one job. MPI implements it today (`MPICollective`); an NCCL one for GPUs
/// has the same operations. Every rank must make the same calls in the same order.
public protocol Collective: AnyObject {
    /// This process's index, 0 ..< size; rank 0 writes the run's files.
    var rank: Int { get }
    /// Processes in the job.
    var size: Int { get }
    /// Replaces `values` on every rank by their element-wise sum over all ranks.
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws
    /// Copies `root`'s bytes into every rank's `bytes` (same length everywhere).
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Returns once every rank has called it.
    func barrier() throws
    /// Ends the collective at the normal end of a run.
    func finish()
    /// Stops every process of the job (this one included), after a failure on this rank.
    func abort(code: Int32) -> Never
    /// Time spent in, and bytes handed to, reductions and broadcasts so far.
    var traffic: CollectiveTraffic { get }
}

/// What a collective has moved: the inputs to the scaling table.
public struct CollectiveTraffic: Sendable, Equatable {
    public var seconds: Double = 0
    /// Bytes of this rank's buffers reduced or broadcast (not what crossed the network).
    public var bytes: Int = 0
    public var calls: Int = 0
    public init() {}
}

/// Why a collective operation failed.
public struct CollectiveError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One process: every operation is the identity. The default.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {}
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func barrier() throws {}
    public func finish() {}
    public func abort(code: Int32) -> Never { exit(code) }
    public var traffic: CollectiveTraffic { CollectiveTraffic() }
}

extension Collective {
    public var isRoot: Bool { rank == 0 }

    /// Element-wise sums of a few doubles (losses, counts) over all ranks.
    public func sum(_ values: [Double]) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { try allreduceSum($0) }
        return v
    }

    /// Root's buffers copied into every rank's.
    public func broadcast(_ buffers: [FloatBuffer], root: Int = 0) throws {
        for b in buffers { try broadcast(UnsafeMutableRawBufferPointer(start: b.pointer, count: b.count * 4), root: root) }
    }

    /// Root's `data` on every rank (other ranks' argument is ignored).
    public func broadcast(_ data: Data, root: Int = 0) throws -> Data {
        var count = [UInt64(data.count)]
        try count.withUnsafeMutableBytes { try broadcast($0, root: root) }
        var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(count[0]))
        try bytes.withUnsafeMutableBytes { try broadcast($0, root: root) }
        return Data(bytes)
    }

    /// Runs `body` on rank 0 alone and hands its failure to every rank, so that no rank waits
    /// in a collective for a root that has given up: rank 0 rethrows its own error, the others
    /// throw one that names it.
    public func onRoot(_ what: String, _ body: () throws -> Void) throws {
        var failure: Error?
        if isRoot {
            do { try body() } catch { failure = error }
        }
        if size > 1 {
            let message = String(decoding: try broadcast(Data((failure.map { "\($0)" } ?? "").utf8)), as: UTF8.self)
            if !isRoot && !message.isEmpty { throw CollectiveError("rank 0 failed to \(what): \(message)") }
        }
        if let failure { throw failure }
    }
}
