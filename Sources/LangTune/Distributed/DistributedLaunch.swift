import Foundation

/// How this process was started: alone, or as one rank of a job an MPI launcher
/// (mpirun, srun, mpiexec) started, as its environment says before MPI itself starts.
public struct DistributedLaunch: Sendable, Equatable {
    /// `--distributed`: auto (MPI when a launcher started us), mpi, or none.
    public enum Mode: String, Sendable, CaseIterable { case auto, mpi, none }

    /// Ranks in the job, when a launcher announced them.
    public var worldSize: Int?
    /// Ranks of this job on this machine, when the launcher says (else nil).
    public var localSize: Int?
    /// The variable that gave the launch away (for messages).
    public var source: String?

    public init(worldSize: Int?, localSize: Int?, source: String?) {
        self.worldSize = worldSize
        self.localSize = localSize
        self.source = source
    }

    /// Reads Open MPI's (`OMPI_COMM_WORLD_*`), PMI's (`PMI_SIZE`: MPICH, Intel MPI, Slurm) and
    /// PMIx's (`PMIX_RANK`: `srun --mpi=pmix`, Open MPI 5) variables.
    public init(environment env: [String: String] = ProcessInfo.processInfo.environment) {
        func int(_ k: String) -> Int? { env[k].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
        if let n = int("OMPI_COMM_WORLD_SIZE") {
            self.init(worldSize: n, localSize: int("OMPI_COMM_WORLD_LOCAL_SIZE"), source: "OMPI_COMM_WORLD_SIZE")
        } else if let n = int("PMI_SIZE") {
            self.init(worldSize: n, localSize: int("MPI_LOCALNRANKS") ?? int("SLURM_NTASKS_PER_NODE"), source: "PMI_SIZE")
        } else if env["PMIX_RANK"] != nil {
            self.init(worldSize: nil, localSize: int("SLURM_NTASKS_PER_NODE"), source: "PMIX_RANK")
        } else {
            self.init(worldSize: nil, localSize: nil, source: nil)
        }
    }

    /// Whether an MPI launcher started this process.
    public var underLauncher: Bool { source != nil }

    /// Whether `mode` asks for MPI in this launch.
    public func usesMPI(_ mode: Mode) -> Bool {
        switch mode {
        case .mpi: return true
        case .none: return false
        case .auto: return underLauncher
        }
    }

    /// Threads per rank when `--threads` is not given: the cores this process may run on
    /// when the launcher bound it to some (its affinity is narrower than the machine), else
    /// the machine's cores shared among the ranks on it.
    public static func threadsPerRank(allowedCores: Int, onlineCores: Int, localRanks: Int?) -> Int {
        if allowedCores < onlineCores { return max(1, allowedCores) }
        return max(1, onlineCores / max(1, localRanks ?? 1))
    }

    /// `threadsPerRank` for this process and machine.
    public var threadsPerRank: Int {
        Self.threadsPerRank(allowedCores: ProcessInfo.processInfo.activeProcessorCount,
                            onlineCores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), localRanks: localSize)
    }

    /// The collective `mode` asks for: MPI (started now, once per process) or a single process.
    public func collective(_ mode: Mode) throws -> any Collective {
        guard usesMPI(mode) else { return SingleProcess() }
        let c: MPICollective
        do {
            c = try MPICollective()
        } catch {
            let why = mode == .mpi ? "--distributed mpi" : "this process was started by an MPI launcher (\(source ?? "")) and"
            throw CollectiveError("\(why) needs MPI, but \(error); install Open MPI (apt-get install openmpi-bin) "
                                  + "or train alone with --distributed none")
        }
        if let n = worldSize, n != c.size {
            throw CollectiveError("the launcher announced \(n) ranks (\(source ?? "")) but MPI has \(c.size)")
        }
        return c
    }
}
