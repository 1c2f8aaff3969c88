import CLangTuneKernels
import Foundation

/// `Collective` over MPI_COMM_WORLD, with libmpi (Open MPI) loaded at run time.
///
/// Errors are returned, not fatal: a failed call throws a `CollectiveError` with MPI's message
/// and the rank, and the caller ends the job with `abort`. A peer that dies is normally caught
/// first by the launcher (mpirun ends the whole job when a process exits abnormally).
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int
    public private(set) var traffic = CollectiveTraffic()
    private var finished = false
    private var watchdog: CollectiveWatchdog?

    /// Seconds one call may wait before this rank gives up and exits, so that the job ends
    /// (nil: wait forever). Set it once start-up is over: loading can keep ranks apart longer.
    public var timeout: Double? {
        didSet { watchdog = timeout.map { CollectiveWatchdog(rank: rank, timeout: $0) } }
    }

    /// Initializes MPI; call once per process.
    public init() throws {
        var path: UnsafePointer<CChar>? = nil, loadError: UnsafePointer<CChar>? = nil
        guard lt_mpi_load(&path, &loadError) != 0 else {
            let why = loadError.map { String(cString: $0) } ?? "not found"
            throw CollectiveError("libmpi (Open MPI, libmpi.so.40) could not be loaded: \(why)")
        }
        var r: Int32 = 0, s: Int32 = 0
        try Self.check(lt_mpi_init(&r, &s), "MPI_Init", rank: nil)
        rank = Int(r)
        size = Int(s)
    }

    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        try timed(values.count * 4, "MPI_Allreduce") { lt_mpi_allreduce_sum_f32(values.baseAddress, Int64(values.count)) }
    }

    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        try timed(values.count * 8, "MPI_Allreduce") { lt_mpi_allreduce_sum_f64(values.baseAddress, Int64(values.count)) }
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        try timed(bytes.count, "MPI_Bcast") { lt_mpi_bcast(bytes.baseAddress, Int64(bytes.count), Int32(root)) }
    }

    public func barrier() throws {
        try timed(0, "MPI_Barrier") { lt_mpi_barrier() }
    }

    public func finish() {
        guard !finished else { return }
        finished = true
        _ = lt_mpi_finalize()
    }

    public func abort(code: Int32) -> Never {
        lt_mpi_abort(code)
        exit(code)  // MPI_Abort does not return; this is for the type checker
    }

    private func timed(_ bytes: Int, _ name: String, _ call: () -> Int32) throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        watchdog?.enter(name)
        let rc = call()
        watchdog?.leave()
        traffic.seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        traffic.bytes += bytes
        traffic.calls += 1
        try Self.check(rc, name, rank: rank)
    }

    private static func check(_ rc: Int32, _ name: String, rank: Int?) throws {
        guard rc != 0 else { return }
        var buf = [CChar](repeating: 0, count: 512)
        lt_mpi_error_string(rc, &buf, Int32(buf.count))
        let message = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CollectiveError("\(rank.map { "rank \($0): " } ?? "")\(name) failed: \(message) "
                              + "(another rank has probably stopped; see its messages above)")
    }
}
