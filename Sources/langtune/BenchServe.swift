import ArgumentParser
import Foundation
import LangTune

struct BenchServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serving throughput and time to first token, against llama.cpp's llama-server in the same run.",
        discussion: """
            Starts `langtune serve` and then llama.cpp's llama-server (LANGTUNE_LLAMA_SERVER, or scripts/build-llama-bench.sh's build under ~/.cache/langtune) on the same model, each in its own process on loopback, and drives each with the same streamed chat requests: --clients concurrent clients, each sending --rounds requests one after another, every request generating exactly --max-tokens tokens (greedy, ignore_eos). Reported per level: aggregate generated tokens/s (all tokens over the wall time of the level) and the p50 and p99 time to first token. Then the cost of adapters on langtune serve at the largest level: every request on one adapter, and requests spread over --adapters adapters (rank --rank on all seven projections), against the base.
            """)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.") var model: String = "default"
    @Option(help: "Concurrent client counts, comma-separated.") var clients: String = "1,4,16"
    @Option(help: "Requests each client sends in turn.") var rounds: Int = 2
    @Option(name: .customLong("max-tokens"), help: "Tokens each request generates.") var maxTokens: Int = 64
    @Option(help: "Adapters for the adapter-cost runs (0 skips them).") var adapters: Int = 8
    @Option(help: "LoRA rank of those adapters.") var rank: Int = 16
    @Option(help: "Worker threads of both servers (default: all cores).") var threads: Int?
    @Option(help: "Precision of langtune serve: bf16 (the default here: int8 inputs and a 16-bit KV cache, llama-server's own scheme) or f32.")
    var dtype: String = "bf16"
    @Flag(name: .customLong("no-baseline")) var noBaseline = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        let levels = clients.split(separator: ",").compactMap { Int($0) }
        if levels.isEmpty || levels.contains(where: { $0 < 1 }) { throw ValidationError("--clients takes positive counts, e.g. 1,4,16") }
        if dtype != "f32" && dtype != "bf16" { throw ValidationError("--dtype must be f32 or bf16") }
        if rounds < 1 || maxTokens < 1 || adapters < 0 || rank < 1 { throw ValidationError("--rounds, --max-tokens, --rank must be >= 1") }
    }

    /// Chat questions of different lengths; request i asks question i mod count.
    static let questions = [
        "Write a short story about a lighthouse keeper.", "Explain how rain forms, step by step.",
        "What are the main differences between cats and dogs as pets?", "Describe your ideal weekend.",
        "Give me advice for learning a new language.", "Why is the sky blue?",
        "List some healthy breakfast ideas and explain why they are healthy.", "Tell me about the history of bicycles.",
    ]

    struct Level: Codable {
        var clients: Int
        var requests: Int
        var errors: Int
        var tokens: Int
        var seconds: Double
        var tokensPerSecond: Double
        var ttftP50: Double
        var ttftP99: Double
    }

    struct Report: Codable {
        var model: String
        var maxTokens: Int
        var threads: Int
        var langtune: [Level]
        var llamaServer: [Level]?
        var adapterCost: [String: Level]?
    }

    func run() throws {
        let path = try LangTuneHome.resolve(model)
        let levels = clients.split(separator: ",").compactMap { Int($0) }
        let top = levels.max()!
        let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-bench-serve-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var adapterArgs: [String] = []
        if adapters > 0 {
            let config = try ModelFiles.load(path).config
            for i in 0..<adapters {
                let a = try LoRAAdapter(config: LoRAConfig(rank: rank, alpha: Double(2 * rank)), model: config, seed: UInt64(i))
                a.randomizeB(seed: UInt64(1000 + i), amplitude: 0.02)
                let dir = scratch.appendingPathComponent("a\(i)").path
                try a.save(to: dir)
                adapterArgs += ["--adapter", "a\(i)=\(dir)"]
            }
        }

        var report = Report(model: path, maxTokens: maxTokens, threads: threadCount, langtune: [])
        note("bench serve: langtune serve on \(URL(fileURLWithPath: path).lastPathComponent), \(threadCount) threads, --dtype \(dtype), CPU tier \(CPUTier.active.name)")
        let ours = try BenchServer.startLangTune(model: path, threads: threads, maxConcurrent: top,
                                                  extra: ["--dtype", dtype] + adapterArgs)
        defer { ours.stop() }
        for c in levels { report.langtune.append(measure(ours, clients: c) { _ in "base" }) }
        if adapters > 0 {
            var cost: [String: Level] = [:]
            cost["base"] = report.langtune.first { $0.clients == top }
            cost["1 adapter"] = measure(ours, clients: top) { _ in "a0" }
            cost["\(adapters) adapters"] = measure(ours, clients: top) { "a\($0 % adapters)" }
            report.adapterCost = cost
        }
        ours.stop()

        if !noBaseline {
            if let bin = llamaCppTool("llama-server", variable: "LANGTUNE_LLAMA_SERVER", otherwise: "no baseline") {
                note("bench serve: llama-server (\(bin))")
                if let theirs = BenchServer.startLlamaServer(bin, model: path, threads: threadCount, slots: top,
                                                             context: top * (512 + maxTokens)) {
                    defer { theirs.stop() }
                    report.llamaServer = levels.map { c in measure(theirs, clients: c) { _ in "base" } }
                }
            } else {
                note("baseline skipped: no llama-server (scripts/build-llama-bench.sh llama-server builds it)")
            }
        }
        if json { return try printJSON(report) }
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        print(pad("server", 14) + lpad("clients", 8) + lpad("requests", 10) + lpad("tokens/s", 12) + lpad("TTFT p50", 12) + lpad("TTFT p99", 12))
        func row(_ name: String, _ l: Level) {
            print(pad(name, 14) + lpad(String(l.clients), 8) + lpad(String(l.requests), 10) + lpad(String(format: "%.1f", l.tokensPerSecond), 12)
                  + lpad(String(format: "%.0f ms", l.ttftP50 * 1000), 12) + lpad(String(format: "%.0f ms", l.ttftP99 * 1000), 12)
                  + (l.errors > 0 ? "  (\(l.errors) errors)" : ""))
        }
        for (i, l) in report.langtune.enumerated() {
            row("langtune", l)
            if let b = report.llamaServer?[i] {
                row("llama-server", b)
                print(pad("  ratio", 14) + lpad(String(l.clients), 8) + String(format: "    langtune/llama-server %.2fx tokens/s",
                                                                                  l.tokensPerSecond / max(b.tokensPerSecond, 1e-9)))
            }
        }
        if let cost = report.adapterCost {
            print("adapter cost at \(top) clients (langtune serve):")
            for key in ["base", "1 adapter", "\(adapters) adapters"] { if let l = cost[key] { row(key, l) } }
        }
    }

    /// Runs one level: `clients` threads, each sending `rounds` streamed requests in turn.
    func measure(_ server: BenchServer, clients: Int, model: @escaping @Sendable (Int) -> String) -> Level {
        let maxTokens = self.maxTokens, rounds = self.rounds
        // One request first so neither server pays its warm-up inside the numbers.
        _ = SSEClient.streamChat(host: "127.0.0.1", port: server.port, body: Self.body(0, model: model(0), maxTokens: 4))
        let results = ResultBox(count: clients * rounds)
        let group = DispatchGroup()
        let start = Date()
        for c in 0..<clients {
            group.enter()
            let t = Thread {
                for r in 0..<rounds {
                    let i = r * clients + c
                    results.set(i, SSEClient.streamChat(host: "127.0.0.1", port: server.port,
                                                       body: Self.body(i, model: model(i), maxTokens: maxTokens)))
                }
                group.leave()
            }
            t.start()
        }
        group.wait()
        let seconds = Date().timeIntervalSince(start)
        let answers = results.all
        let ok = answers.filter(\.ok)
        let ttft = ok.compactMap(\.timeToFirstToken).sorted()
        func pct(_ p: Double) -> Double { ttft.isEmpty ? 0 : ttft[min(ttft.count - 1, Int((p * Double(ttft.count)).rounded(.up)) - 1)] }
        let tokens = ok.reduce(0) { $0 + $1.tokens }
        let level = Level(clients: clients, requests: answers.count, errors: answers.count - ok.count, tokens: tokens, seconds: seconds,
                          tokensPerSecond: Double(tokens) / seconds, ttftP50: pct(0.5), ttftP99: pct(0.99))
        note(String(format: "  %@ %d clients: %.1f tokens/s, TTFT p50 %.0f ms p99 %.0f ms%@", server.name, clients, level.tokensPerSecond,
                    level.ttftP50 * 1000, level.ttftP99 * 1000, level.errors > 0 ? ", \(level.errors) errors" : ""))
        return level
    }

    static func body(_ i: Int, model: String, maxTokens: Int) -> Data {
        let obj: [String: Any] = [
            "model": model, "max_tokens": maxTokens, "temperature": 0, "stream": true, "ignore_eos": true,
            "stream_options": ["include_usage": true],
            "messages": [["role": "user", "content": questions[i % questions.count]]],
        ]
        return (try? JSONSerialization.data(withJSONObject: obj)) ?? Data()
    }
}

/// Answers written by the client threads.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [StreamedAnswer]
    init(count: Int) { items = Array(repeating: StreamedAnswer(), count: count) }
    func set(_ i: Int, _ a: StreamedAnswer) { lock.lock(); items[i] = a; lock.unlock() }
    var all: [StreamedAnswer] { lock.lock(); defer { lock.unlock() }; return items }
}

/// A server process the benchmark started, and its port.
final class BenchServer: @unchecked Sendable {
    let name: String
    let process: Process
    let port: Int

    init(name: String, process: Process, port: Int) {
        self.name = name
        self.process = process
        self.port = port
    }

    /// `langtune serve` from this same executable, on a free port it reports.
    static func startLangTune(model: String, threads: Int?, maxConcurrent: Int, extra: [String]) throws -> BenchServer {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = ["serve", "--model", model, "--port", "0", "--max-concurrent", String(maxConcurrent), "--log-level", "warning"]
            + (threads.map { ["--threads", String($0)] } ?? []) + extra
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        // The first stdout line names the bound port.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            line.append(d)
        }
        guard let text = String(data: line, encoding: .utf8), let port = text.split(separator: ":").last
            .flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            p.terminate()
            throw ValidationError("langtune serve did not start")
        }
        return BenchServer(name: "langtune", process: p, port: port)
    }

    /// llama.cpp's server with `slots` parallel sequences (continuous batching is its default).
    static func startLlamaServer(_ bin: String, model: String, threads: Int, slots: Int, context: Int) -> BenchServer? {
        let port = freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.environment = baselineEnvironment()
        p.arguments = ["-m", model, "--host", "127.0.0.1", "--port", String(port), "-t", String(threads), "-tb", String(threads),
                       "--parallel", String(slots), "--ctx-size", String(context), "--no-webui"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { note("llama-server skipped: \(error)"); return nil }
        let server = BenchServer(name: "llama-server", process: p, port: port)
        for _ in 0..<600 {
            if SSEClient.getStatus(host: "127.0.0.1", port: port, path: "/health") == 200 { return server }
            if !p.isRunning { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        note("llama-server skipped: it did not become ready")
        server.stop()
        return nil
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        // llama-server did not always exit on SIGTERM (seen once here, idle after the run): 10 s, then SIGKILL.
        for _ in 0..<100 where process.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// A port nothing listens on now (bound to 0 and released).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
