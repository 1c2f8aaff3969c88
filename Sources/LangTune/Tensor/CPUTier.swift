import CLangTuneKernels
import Foundation

/// The instruction set LangTune's kernels run on, chosen once at run time: the best tier the CPU runs, or
/// a lower one named by `LANGTUNE_ISA` (so a machine with AVX-512 can run and test the AVX2 kernels).
public enum CPUTier: Int32, CaseIterable, Sendable, CustomStringConvertible {
    /// Plain C compiled for the baseline target (SSE2 on x86-64, NEON auto-vectorization on ARM64).
    case portable = 0
    /// ARM64 Advanced SIMD.
    case neon = 1
    /// AVX2 + FMA + F16C: most x86 CPUs since 2013 (AMD Zen, Intel client chips).
    case avx2 = 2
    /// AVX-512 F/BW/DQ/VL, with VNNI and AVX512-BF16 where present.
    case avx512 = 3
    /// AVX-512 plus AMX-BF16 tiles (Intel Sapphire Rapids and later).
    case amx = 4

    /// The tier in use now.
    public static var active: CPUTier { CPUTier(rawValue: lt_isa()) ?? .portable }
    /// The best tier this CPU and OS run.
    public static var best: CPUTier { CPUTier(rawValue: lt_isa_best()) ?? .portable }
    /// Every tier this CPU runs, lowest first.
    public static var runnable: [CPUTier] { allCases.filter(\.runsHere) }

    /// Whether this CPU runs the tier's kernels.
    public var runsHere: Bool { lt_isa_runs(rawValue) != 0 }
    /// The name `LANGTUNE_ISA` takes.
    public var name: String { String(cString: lt_isa_name(rawValue)) }
    public var description: String { name }

    /// The tier of a `LANGTUNE_ISA` name.
    public init?(name: String) {
        let v = lt_isa_parse(name)
        guard v >= 0, let t = CPUTier(rawValue: v) else { return nil }
        self = t
    }

    /// Makes this tier the active one for the whole process (tests, benchmarks).
    public func activate() throws {
        guard lt_set_isa(rawValue) == 0 else { throw CPUTierError.unsupported(self, best: CPUTier.best) }
    }

    /// Runs `body` on each tier this CPU runs, then restores the tier that was active.
    public static func forEachRunnable(_ body: (CPUTier) throws -> Void) rethrows {
        let saved = active
        defer { _ = lt_set_isa(saved.rawValue) }
        for tier in runnable {
            _ = lt_set_isa(tier.rawValue)
            try body(tier)
        }
    }

    /// Why `LANGTUNE_ISA` was ignored, or nil when it is unset or was taken.
    public static var environmentProblem: String? {
        guard let p = lt_isa_env_problem() else { return nil }
        let value = String(cString: getenv("LANGTUNE_ISA"))
        return "\(String(cString: p)) (got \"\(value)\"; this CPU runs: \(runnable.map(\.name).joined(separator: ", ")))"
    }

    /// The optional units the active tier uses here, for `backend:` lines.
    var unitsNote: String {
        let f = lt_cpu_features()
        func has(_ bit: Int32) -> Bool { f & bit != 0 }
        var units: [String] = []
        switch self {
        case .amx: units = ["AMX-BF16"]
        case .avx512:
            if has(Int32(LT_CPU_AVX512VNNI)) { units.append("VNNI") }
            if has(Int32(LT_CPU_AVX512BF16)) { units.append("AVX512-BF16") }
        case .neon:
            if has(Int32(LT_CPU_NEON_DOTPROD)) { units.append("dotprod") }
            if has(Int32(LT_CPU_NEON_I8MM)) { units.append("i8mm") }
        case .avx2, .portable: break
        }
        if self != CPUTier.best { units.append("CPU's best: \(CPUTier.best.name)") }
        return units.isEmpty ? "" : " (\(units.joined(separator: ", ")))"
    }
}

/// A tier this CPU cannot run.
public enum CPUTierError: Error, CustomStringConvertible {
    case unsupported(CPUTier, best: CPUTier)
    public var description: String {
        switch self {
        case let .unsupported(t, best): return "this CPU cannot run the \(t.name) kernels (its best tier is \(best.name))"
        }
    }
}
