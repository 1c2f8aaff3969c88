import Foundation
import XCTest
@testable import LangTune

/// Runs `langtune` under Open MPI's `mpirun` on this machine (loopback).
enum MPITestSupport {
    /// `mpirun` from PATH. Absent: the test skips, or fails where real dependencies are
    /// required (`LANGTUNE_REQUIRE_MODELS=1`, as CI sets; scripts/setup.sh installs Open MPI).
    static func mpirun() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        let message = "mpirun is absent (install Open MPI: apt-get install openmpi-bin libopenmpi-dev, or run scripts/setup.sh)"
        if TestPaths.requireReal { XCTFail(message) }
        throw XCTSkip(message)
    }

    /// mpirun's arguments for `apps` (one `-np N langtune ARGS` group each, MPMD when several).
    static func arguments(_ apps: [(np: Int, args: [String])]) throws -> [String] {
        let binary = try CLI.binary().path
        var out = ["--allow-run-as-root", "--oversubscribe"]
        for (i, app) in apps.enumerated() {
            if i > 0 { out.append(":") }
            out += ["-np", String(app.np), binary] + app.args
        }
        return out
    }

    /// Starts mpirun with stdout and stderr going to a file (read it with `output`).
    static func start(_ apps: [(np: Int, args: [String])], log: URL) throws -> Process {
        let p = Process()
        p.executableURL = try mpirun()
        p.arguments = try arguments(apps)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let h = try FileHandle(forWritingTo: log)
        p.standardOutput = h
        p.standardError = h
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs mpirun to the end: (status, everything it printed, seconds).
    static func run(_ apps: [(np: Int, args: [String])], in dir: URL) throws -> (status: Int32, output: String, seconds: Double) {
        let log = dir.appendingPathComponent("mpirun-\(UInt32.random(in: 0...UInt32.max)).log")
        let t0 = Date()
        let p = try start(apps, log: log)
        p.waitUntilExit()
        return (p.terminationStatus, try String(contentsOf: log, encoding: .utf8), Date().timeIntervalSince(t0))
    }

    /// The pid of MPI rank `rank` among mpirun's children (mpirun starts local ranks itself).
    static func rankPID(_ rank: Int, of mpirun: Process) -> pid_t? {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in procs {
            guard let pid = pid_t(name),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, pid_t(fields[1]) == mpirun.processIdentifier,
                  let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if vars.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }

    /// Calls `body` with each pair of values of two runs' adapters (same tensors, same order).
    static func forEachValue(_ a: URL, _ b: URL, _ body: (Float, Float) -> Void) throws {
        let fa = try SafetensorsFile(path: a.appendingPathComponent("adapter_model.safetensors").path)
        let fb = try SafetensorsFile(path: b.appendingPathComponent("adapter_model.safetensors").path)
        XCTAssertEqual(fa.tensorNames.sorted(), fb.tensorNames.sorted())
        for name in fa.tensorNames {
            let x = try dequantize(try fa.tensor(name)), y = try dequantize(try fb.tensor(name))
            XCTAssertEqual(x.count, y.count, name)
            for (u, v) in zip(x, y) { body(u, v) }
        }
    }

    /// The largest absolute difference between two adapters' values, and the largest absolute value.
    static func difference(_ a: URL, _ b: URL) throws -> (maxDiff: Float, maxValue: Float) {
        var d: Float = 0, m: Float = 0
        try forEachValue(a, b) { u, v in d = max(d, abs(u - v)); m = max(m, abs(u)) }
        return (d, m)
    }

    /// How many adapter values differ by more than each threshold, and how many values there are.
    static func countDifferences(_ a: URL, _ b: URL, above thresholds: [Float]) throws -> (counts: [Int], total: Int) {
        var counts = [Int](repeating: 0, count: thresholds.count), total = 0
        try forEachValue(a, b) { u, v in
            total += 1
            for (i, t) in thresholds.enumerated() where abs(u - v) > t { counts[i] += 1 }
        }
        return (counts, total)
    }

    /// (loss, grad_norm) of every step in metrics.jsonl.
    static func steps(_ run: URL) throws -> [(loss: Double, gradNorm: Double)] {
        try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let loss = o?["loss"] as? Double, let norm = o?["grad_norm"] as? Double else { return nil }
            return (loss, norm)
        }
    }

    /// The largest relative difference between two runs' per-step losses and gradient norms.
    static func stepDifference(_ a: URL, _ b: URL) throws -> Double {
        let x = try steps(a), y = try steps(b)
        XCTAssertEqual(x.count, y.count)
        return zip(x, y).map { max(abs($0.loss - $1.loss) / abs($0.loss), abs($0.gradNorm - $1.gradNorm) / abs($0.gradNorm)) }.max() ?? .infinity
    }
}
