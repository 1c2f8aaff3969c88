import ArgumentParser
import CLangTuneKernels
import Foundation
import LangTune

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that measure LangTune and its baseline in the same run.",
        subcommands: [BenchTrain.self, BenchGenerate.self, BenchServe.self, BenchBatch.self, BenchTokenize.self, BenchMemory.self, BenchGEMM.self])
}

/// Runs a Python baseline script from Benchmarks/ and returns its JSON output, or nil with a note.
func runBaseline(_ script: String, _ args: [String]) -> [String: Double]? {
    runBaselineObject(script, args)?.compactMapValues { ($0 as? NSNumber)?.doubleValue }
}

/// The environment baselines run in: without the OMP_WAIT_POLICY=PASSIVE LangTune sets for oneDNN (its own
/// threads alternate with oneDNN's). Inherited, it parked PyTorch's and llama.cpp's OpenMP threads between
/// operations: llama-bench decoded at 15-26 tokens/s under it against 96 standalone.
func baselineEnvironment() -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    if lt_dnnl_set_wait_policy() != 0 { env["OMP_WAIT_POLICY"] = nil }
    return env
}

/// Like `runBaseline`, keeping nested objects.
func runBaselineObject(_ script: String, _ args: [String]) -> [String: Any]? {
    let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let path = here.appendingPathComponent("Benchmarks/\(script)").path
    guard FileManager.default.fileExists(atPath: path) else { note("baseline skipped: \(path) not found"); return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [ProcessInfo.processInfo.environment["LANGTUNE_PYTHON"] ?? "python3", path] + args
    p.environment = baselineEnvironment()
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { note("baseline skipped: \(error)"); return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0,
          let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
          let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        note("baseline skipped: \(script) failed (exit \(p.terminationStatus))")
        return nil
    }
    return obj
}

/// The training the benchmarks time: LoRA rank `rank` (alpha 2·rank) on all seven projections, AdamW at
/// 1e-4, one batch of `batchSize` random sequences of `seqLen` ids (seeded, every position labelled).
struct RandomTrainingRun {
    let trainer: Trainer
    let batch: [TokenizedExample]
    let adapter: LoRAAdapter
    /// The trainer's output folder (it writes nothing unless asked; removed afterwards anyway).
    let scratch: URL

    init(model: LlamaModel, rank: Int, steps: Int, batchSize: Int, seqLen: Int, checkpointActivations: Bool,
         dataSeed: UInt64, name: String) throws {
        let c = model.config
        var opts = TrainingOptions()
        opts.lora = LoRAConfig(rank: rank, alpha: Double(2 * rank))
        opts.optimizer.learningRate = 1e-4
        opts.steps = steps
        opts.batchSize = batchSize
        opts.checkpointActivations = checkpointActivations
        var rng = SplitMix64(seed: dataSeed)
        batch = (0..<batchSize).map { _ in
            let ids = (0..<seqLen).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
            return TokenizedExample(ids: ids, labels: ids, origin: "random")
        }
        adapter = try LoRAAdapter(config: opts.lora, model: c, seed: 0)
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-bench-\(name)-\(getpid())")
        trainer = Trainer(model: model, adapter: adapter, train: batch, validation: [], options: opts, output: scratch)
    }

    func removeScratch() { try? FileManager.default.removeItem(at: scratch) }
}

/// This process's resource usage so far.
private func selfUsage() -> rusage {
    var u = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &u)
    #else
    getrusage(RUSAGE_SELF, &u)
    #endif
    return u
}

/// User plus system CPU seconds this process has used so far.
func processCPUSeconds() -> Double {
    let u = selfUsage()
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

/// Peak resident memory of this process so far, in bytes.
func peakRSSBytes() -> Int {
    let u = selfUsage()
    #if os(Linux)
    return Int(u.ru_maxrss) * 1024
    #else
    return Int(u.ru_maxrss)
    #endif
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "LoRA training speed and peak memory, against PyTorch + PEFT in the same run.",
        discussion: """
            One batch of --batch-size sequences of --seq-len random token ids (seeded, every
            position labelled), LoRA rank --rank on all seven projections, AdamW; one warm-up
            step, then --steps timed steps. The baseline (Benchmarks/pytorch_train_bench.py, run
            with LANGTUNE_PYTHON or python3; it needs torch, transformers, peft, gguf) trains the
            same setting in float32 and with bf16 autocast, each in its own process, so peak RSS
            is per run.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "lora (float32 base) or qlora (NF4 base with double quantization, as bitsandbytes).") var method: String = "lora"
    @Option(name: .customLong("seq-len")) var seqLen: Int = 512
    @Option(name: .customLong("batch-size")) var batchSize: Int = 4
    @Option(help: "Timed steps after one warm-up step.") var steps: Int = 3
    @Option(help: "LoRA rank.") var rank: Int = 16
    @Flag(name: .customLong("checkpoint-activations")) var checkpointActivations = false
    @Flag(name: .customLong("no-baseline")) var noBaseline = false
    @Option(name: .customLong("baseline-modes"), help: "PyTorch modes: float32,bf16_autocast,qlora.")
    var baselineModes: String = "float32,bf16_autocast"
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard method == "lora" || method == "qlora" else { throw ValidationError("--method must be lora or qlora") }
        if seqLen < 2 || batchSize < 1 || steps < 1 { throw ValidationError("--seq-len ≥ 2, --batch-size ≥ 1, --steps ≥ 1") }
    }

    func run() throws {
        pinMallocThreshold()
        let lm = try modelOptions.load(quantization: method == "qlora" ? FrozenQuantization(cacheDirectory: QuantizedBaseCache.defaultRoot) : nil)
        let c = lm.files.config
        let setup = try RandomTrainingRun(model: lm.model, rank: rank, steps: steps + 1, batchSize: batchSize, seqLen: seqLen,
                                          checkpointActivations: checkpointActivations, dataSeed: 0, name: "train")
        defer { setup.removeScratch() }
        let (trainer, examples) = (setup.trainer, setup.batch)
        var times: [Double] = []
        for _ in 0...steps {
            let t0 = Date()
            _ = try trainer.step([examples])
            times.append(Date().timeIntervalSince(t0))
        }
        let timed = times.dropFirst().reduce(0, +)
        let tokens = Double(batchSize * seqLen * steps)
        let peakRSS = peakRSSBytes()  // before the GEMM peak measurement below allocates its matrices
        var result: [String: Any] = [
            "tokens_per_second": tokens / timed, "seconds_per_step": timed / Double(steps),
            "first_step_seconds": times[0], "peak_rss_bytes": peakRSS,
            "threads": lm.model.backend.threads.count, "seq_len": seqLen, "batch_size": batchSize, "rank": rank,
        ]
        // Useful FLOPs (issue 6's definition): 2N per token forward, 2N backward for input gradients,
        // attention, LoRA forward + backward (A and B gradients), no recomputation counted.
        let N = Double(c.numLayers) * Double(LoRATarget.allCases.reduce(0) { $0 + $1.shape(c).out * $1.shape(c).in })
            + Double(c.vocabSize * c.hiddenSize)
        let attn = Double(c.numLayers) * 2 * Double(seqLen) * Double(c.numHeads * c.headDim) * 2
        let lora = Double(c.numLayers) * Double(LoRATarget.allCases.reduce(0) { $0 + rank * ($1.shape(c).out + $1.shape(c).in) })
        let flopsPerToken = 4 * N + 3 * attn + 6 * lora
        result["model_tflops"] = flopsPerToken * tokens / timed / 1e12
        // Model FLOP utilization against the bf16 GEMM peak of this machine, measured now: the best of
        // this model's MLP product at the step's token count and a square 4096³ product.
        // Both bf16 implementations count (LangTune's AMX kernel and oneDNN's): the peak is the faster one.
        let th = lm.model.backend.threads
        let peaks = [GEMMMeasurement.measure(m: batchSize * seqLen, n: c.intermediateSize, k: c.hiddenSize, repeats: 3, threads: th),
                     GEMMMeasurement.measure(m: 4096, n: 4096, k: 4096, repeats: 2, threads: th)]
        if let peak = (peaks.compactMap(\.bf16GFLOPS) + peaks.compactMap(\.oneDNNBF16GFLOPS)).max() {
            result["bf16_peak_tflops"] = peak / 1000
            result["mfu"] = flopsPerToken * tokens / timed / 1e9 / peak
        }
        if let dnnl = (peaks.compactMap(\.oneDNNBF16GFLOPS) + (lt_amx_available() == 0 ? peaks.compactMap(\.bf16GFLOPS) : [])).max() {
            result["onednn_bf16_peak_tflops"] = dnnl / 1000
        }
        result["dtype"] = lm.model.backend.usesBF16 ? "bf16" : "f32"
        if !noBaseline, let b = runBaselineObject("pytorch_train_bench.py", [
            "--model", lm.files.path, "--steps", String(steps), "--seq-len", String(seqLen), "--batch-size", String(batchSize),
            "--threads", String(lm.model.backend.threads.count), "--rank", String(rank), "--modes", baselineModes]) {
            for mode in ["float32", "bf16_autocast", "qlora"] {
                guard let m = b[mode] as? [String: Any] else { continue }
                result["pytorch_" + mode] = m
                if let tps = (m["tokens_per_second"] as? NSNumber)?.doubleValue, tps > 0 {
                    result["speedup_vs_" + mode] = tokens / timed / tps
                }
                if let rss = (m["peak_rss_bytes"] as? NSNumber)?.doubleValue, rss > 0 {
                    result["memory_ratio_vs_" + mode] = Double(peakRSS) / rss
                }
            }
        }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print(String(format: "LangTune \(method == "qlora" ? "QLoRA" : "LoRA") r%d %@, %d×%d tokens: %.1f tokens/s, %.2f s/step, peak RSS %.2f GB (%@)", rank,
                     lm.model.backend.usesBF16 ? "bf16" : "f32", batchSize, seqLen,
                     tokens / timed, timed / Double(steps), Double(peakRSS) / 1e9, lm.model.backend.name))
        if let mfu = result["mfu"] as? Double, let peak = result["bf16_peak_tflops"] as? Double {
            print(String(format: "model FLOPs: %.3f TFLOP/s = %.1f%% of the bf16 GEMM peak measured now (%.3f TFLOP/s; oneDNN %.3f)",
                         result["model_tflops"] as? Double ?? 0, 100 * mfu, peak, result["onednn_bf16_peak_tflops"] as? Double ?? 0))
        }
        for mode in ["float32", "bf16_autocast", "qlora"] {
            guard let m = result["pytorch_" + mode] as? [String: Any],
                  let tps = (m["tokens_per_second"] as? NSNumber)?.doubleValue,
                  let rss = (m["peak_rss_bytes"] as? NSNumber)?.doubleValue else { continue }
            print(String(format: "PyTorch+PEFT %@: %.1f tokens/s, peak RSS %.2f GB → LangTune is %.2fx faster at %.2fx the memory",
                         mode, tps, rss / 1e9, tokens / timed / tps, Double(peakRSS) / rss))
        }
    }
}

struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encoding speed in MB/s, against Hugging Face tokenizers on the same texts.",
        discussion: """
            --file is a text file (one text per line) or a SQuAD JSON file (every
            context and question). Both sides encode each text separately, without
            special tokens, on one thread. The baseline (Benchmarks/hf_tokenizers_encode.py)
            needs Python with `tokenizers` (and `gguf` for a GGUF model); set
            LANGTUNE_PYTHON to choose the interpreter.

            Example:
              langtune bench tokenize --file ../shared/data/tquad/train-v0.1.json
            """)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.") var model: String = "default"
    @Option(help: "A tokenizer.json instead of the model's tokenizer.") var tokenizer: String?
    @Option(help: "Text file (one text per line) or SQuAD JSON.") var file: String
    @Option(help: "Repetitions; the best is reported.") var repeats: Int = 3
    @Flag(name: .customLong("no-baseline")) var noBaseline = false
    @Flag(help: "Print JSON.") var json = false

    func texts() throws -> [String] {
        if file.lowercased().hasSuffix(".json") {
            return try DatasetReader.read(file, format: .squad).flatMap { ex -> [String] in
                guard case .qa(let q) = ex.body else { return [] }
                return [q.context, q.question]
            }.reduce(into: (seen: Set<String>(), texts: [String]())) { acc, t in
                // Each paragraph's context once (SQuAD repeats it for every question).
                if acc.seen.insert(t).inserted { acc.texts.append(t) }
            }.texts
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw FormatError(file: file, "cannot read the file") }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func run() throws {
        let lines = try texts()
        let bytes = lines.reduce(0) { $0 + $1.utf8.count }
        let tok: LangTune.Tokenizer
        let baselineArgs: [String]
        if let path = tokenizer {
            guard let tj = FileManager.default.contents(atPath: path) else { throw FormatError(file: path, "cannot read the file") }
            tok = try LangTune.Tokenizer(tokenizerJSON: tj, tokenizerConfigJSON: nil, file: path)
            baselineArgs = ["--tokenizer-json", path]
        } else {
            let path = try LangTuneHome.resolve(model)
            tok = try LangTune.Tokenizer(source: try ModelFiles.load(path).tokenizer)
            baselineArgs = ["--gguf", path]
        }
        var best = 0.0
        var count = 0
        for _ in 0..<max(repeats, 1) {
            let t0 = Date()
            count = 0
            for l in lines { count += tok.encode(l).count }
            best = max(best, Double(bytes) / 1e6 / Date().timeIntervalSince(t0))
        }
        var result: [String: Double] = ["megabytes_per_second": best, "bytes": Double(bytes), "tokens": Double(count),
                                        "texts": Double(lines.count)]
        if !noBaseline {
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("langtune-bench-texts-\(getpid()).json")
            try JSONSerialization.data(withJSONObject: lines).write(to: tmp)
            defer { try? FileManager.default.removeItem(at: tmp) }
            if let b = runBaseline("hf_tokenizers_encode.py", baselineArgs + ["--texts", tmp.path, "--repeats", String(repeats)]) {
                for (k, v) in b { result["hf_" + k] = v }
                if let mb = b["megabytes_per_second"], mb > 0 { result["ratio"] = best / mb }
                if let t = b["tokens"], Int(t) != count { note("warning: token counts differ (LangTune \(count), HF \(Int(t)))") }
            }
        }
        if json { try printJSON(result); return }
        print(String(format: "LangTune      %.2f MB/s (%d texts, %.1f MB, %d tokens)", best, lines.count, Double(bytes) / 1e6, count))
        if let mb = result["hf_megabytes_per_second"] {
            print(String(format: "HF tokenizers %.2f MB/s (one thread); ratio %.2fx", mb, result["ratio"] ?? 0))
        }
    }
}
