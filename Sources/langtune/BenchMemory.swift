import ArgumentParser
import Foundation
import LangTune

struct BenchMemory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Peak memory and step time of LoRA or QLoRA training on a model shape, from random weights.",
        discussion: """
            Builds a Llama-shaped model (--shape) from seeded random weights, with no file: QLoRA keeps
            every projection as NF4 with double quantization, LoRA as bfloat16 (--lora-base f32 for
            float32; an 8B model's float32 projections need 28 GB); embeddings and the output head are
            bfloat16 in both. Then it trains LoRA rank --rank on all seven projections with AdamW on
            --batch-size random sequences of --seq-len tokens (every position labelled, the loss computed
            over the vocabulary in chunks), with activation checkpointing unless
            --no-checkpoint-activations. It reports the process's peak RSS (weights included) and the
            seconds per step: the mean over steps after the first when --steps is 2 or more. With --nodes,
            it also prints data-parallel training's expected scaling from that step time and the LoRA
            gradient bytes summed per step, at each --bandwidth (the model: docs/PERFORMANCE.md).

            Shapes: llama3-8b (32 layers, hidden 4096, 8 key/value heads, vocabulary 128256),
            llama3.2-1b, smollm2-135m. One llama3-8b step at 512 tokens takes minutes on 2 cores.

            Examples:
              langtune bench memory --shape llama3-8b --method qlora --steps 1 --json
              langtune bench memory --shape llama3-8b --method lora --steps 1
              langtune bench memory --shape smollm2-135m --method qlora --steps 3
              langtune bench memory --shape smollm2-135m --method lora --steps 3 --nodes 2,4,8,16,32,64 --bandwidth 10,100
            """)

    @Option(help: "Model shape: llama3-8b, llama3.2-1b or smollm2-135m.") var shape: String = "llama3-8b"
    @Option(help: "qlora (NF4 base) or lora (16- or 32-bit base).") var method: String = "qlora"
    @Option(name: .customLong("lora-base"), help: "With --method lora: bf16 or f32 projections.") var loraBase: String = "bf16"
    @Flag(name: .customLong("no-double-quant"), help: "With --method qlora: plain float32 NF4 block scales.") var noDoubleQuant = false
    @Option(help: "Training steps (the first is also timed when it is the only one).") var steps: Int = 2
    @Option(name: .customLong("seq-len")) var seqLen: Int = 512
    @Option(name: .customLong("batch-size")) var batchSize: Int = 1
    @Option(help: "LoRA rank.") var rank: Int = 16
    @Flag(name: .customLong("no-checkpoint-activations"), help: "Keep every layer's activations (more memory).")
    var noCheckpointActivations = false
    @Option(help: "Products: f32, or bf16 (bf16 inputs, float32 accumulation; the bf16 projections are read as they are).")
    var dtype: String = "f32"
    @Option(help: "Worker threads (default: all cores).") var threads: Int?
    @Option(help: "Data-parallel rank counts (e.g. 2,4,8,16,32,64): the expected scaling from the measured step time.") var nodes: String?
    @Option(help: "With --nodes: network bandwidths in Gb/s.") var bandwidth: String = "10,100"
    @Option(name: .customLong("global-batch"), help: "With --nodes: sequences per optimizer step, all ranks together (default: the largest --nodes).")
    var globalBatch: Int?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard LlamaConfig.namedShapes[shape] != nil else {
            throw ValidationError("unknown --shape \(shape); known: \(LlamaConfig.namedShapes.keys.sorted().joined(separator: ", "))")
        }
        guard method == "qlora" || method == "lora" else { throw ValidationError("--method must be qlora or lora") }
        guard loraBase == "bf16" || loraBase == "f32" else { throw ValidationError("--lora-base must be bf16 or f32") }
        guard dtype == "bf16" || dtype == "f32" else { throw ValidationError("--dtype must be f32 or bf16") }
        if seqLen < 2 || batchSize < 1 || steps < 1 || rank < 1 { throw ValidationError("--seq-len ≥ 2, --batch-size ≥ 1, --steps ≥ 1, --rank ≥ 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        pinMallocThreshold()
        let c = LlamaConfig.namedShapes[shape]!
        let kind: SyntheticWeights = method == "qlora" ? .nf4 : (loraBase == "f32" ? .f32 : .bf16)
        let checkpoint = !noCheckpointActivations
        if let t = threads { setenv("OMP_NUM_THREADS", String(t), 1) }
        let backend = CPUBackend(threads: Threads(threads), bf16: dtype == "bf16")
        let estimate = MemoryEstimate.training(
            config: c, method: method == "qlora" ? .qlora : .lora, rank: rank, seqLen: seqLen, batchSize: batchSize,
            checkpointActivations: checkpoint, doubleQuant: !noDoubleQuant, baseBytesPerWeight: kind == .f32 ? 4 : 2,
            embeddingBytesPerValue: 2)
        note(String(format: "building %@ (%@ projections) from random weights; expected peak %.2f GB", shape, kind.rawValue,
                    Double(estimate.total) / 1e9))

        let t0 = Date()
        let model = LlamaModel.synthetic(config: c, projections: kind, doubleQuant: !noDoubleQuant, seed: 0, backend: backend)
        let buildSeconds = Date().timeIntervalSince(t0)
        let rssAfterBuild = currentRSSBytes()
        let peakBuilding = peakRSSBytes()
        let trainingPeak = TrainingPeak()

        let setup = try RandomTrainingRun(model: model, rank: rank, steps: steps, batchSize: batchSize, seqLen: seqLen,
                                          checkpointActivations: checkpoint, dataSeed: 1, name: "memory")
        defer { setup.removeScratch() }
        let (trainer, examples, adapter) = (setup.trainer, setup.batch, setup.adapter)
        var times: [Double] = [], losses: [Double] = []
        for i in 0..<steps {
            let s0 = Date()
            let r = try trainer.step([examples])
            times.append(Date().timeIntervalSince(s0))
            losses.append(r.loss)
            note(String(format: "step %d/%d: loss %.4f, %.1f s, peak RSS %.2f GB", i + 1, steps, r.loss, times.last!,
                        Double(peakRSSBytes()) / 1e9))
        }
        guard losses.allSatisfy(\.isFinite) else { throw ValidationError("training produced a non-finite loss: \(losses)") }
        let timed = steps >= 2 ? Array(times.dropFirst()) : times
        let perStep = timed.reduce(0, +) / Double(timed.count)
        let peak = peakRSSBytes()
        let loraParams = adapter.layers.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.a.count + $1.b.count } }
        // Data parallel: the gradients summed per optimizer step and, with --nodes, the scaling on paper.
        let nodeCounts: [Int]? = try nodes.map { try parseList($0, "--nodes") }
        let scaling = ScalingModel(secondsPerSequence: perStep / Double(batchSize), globalBatch: globalBatch ?? nodeCounts?.max() ?? batchSize,
                                   gradientBytes: 4 * loraParams)
        let rows = try nodeCounts.map { ScalingRow.rows(scaling, ranks: $0, gbps: try parseList(bandwidth, "--bandwidth")) }
        var result: [String: Any] = [
            "shape": shape, "method": method, "projections": kind.rawValue, "double_quant": kind == .nf4 && !noDoubleQuant,
            "seq_len": seqLen, "batch_size": batchSize, "rank": rank, "steps": steps, "checkpoint_activations": checkpoint,
            "threads": backend.threads.count, "peak_rss_bytes": peak, "rss_after_build_bytes": rssAfterBuild,
            "seconds_per_step": perStep, "peak_rss_building_bytes": peakBuilding,
            "peak_rss_training_bytes": trainingPeak.bytes ?? NSNull(), "first_step_seconds": times[0],
            "tokens_per_second": Double(seqLen * batchSize) / perStep, "build_seconds": buildSeconds,
            "frozen_weight_bytes": model.frozenWeightBytes, "lora_parameters": loraParams,
            "estimated_peak_bytes": estimate.total, "losses": losses, "backend": backend.name,
            "dtype": backend.usesBF16 ? "bf16" : "f32", "gradient_bytes_per_step": 4 * loraParams,
        ]
        if let rows {
            result["scaling"] = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(rows))
            result["global_batch"] = scaling.globalBatch
        }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print(String(format: "%@ %@ (%@ projections), r%d, %d×%d tokens%@: peak RSS %.2f GB (estimated %.2f), %.1f s/step, %.1f tokens/s",
                     shape, method == "qlora" ? "QLoRA" : "LoRA", kind.rawValue, rank, batchSize, seqLen,
                     checkpoint ? ", activation checkpointing" : "", Double(peak) / 1e9, Double(estimate.total) / 1e9,
                     perStep, Double(seqLen * batchSize) / perStep))
        print(String(format: "frozen weights %.2f GB, built in %.1f s; %@ products; %@", Double(model.frozenWeightBytes) / 1e9, buildSeconds,
                     backend.usesBF16 ? "bf16" : "f32", backend.name))
        if let rows { ScalingRow.print(rows, model: scaling) }
    }
}

/// Resident memory of this process now (Linux: /proc/self/statm; elsewhere the peak so far).
func currentRSSBytes() -> Int {
    #if os(Linux)
    if let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
        let f = s.split(separator: " ")
        if f.count > 1, let pages = Int(f[1]) { return pages * Int(sysconf(Int32(_SC_PAGESIZE))) }
    }
    #endif
    return peakRSSBytes()
}

/// The peak RSS from now on (Linux: resets the kernel's high-water mark through
/// /proc/self/clear_refs and reads VmHWM later); nil where that is not available.
struct TrainingPeak {
    let available: Bool
    init() {
        #if os(Linux)
        available = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        #else
        available = false
        #endif
    }
    var bytes: Int? {
        guard available, let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") else { return nil }
        return kb * 1024
    }
}
