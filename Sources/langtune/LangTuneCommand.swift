import ArgumentParser
import Foundation
import LangTune

@main
struct LangTuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "langtune",
        abstract: "Adapt Llama-family language models to a new language, on the CPU.",
        discussion: """
            MODEL is a GGUF file, a Hugging Face safetensors folder, or `default`
            (SmolLM2-135M-Instruct, fetched by scripts/fetch-models.sh).

            Examples:
              langtune inspect default
              langtune generate --model default --chat --prompt "Türkiye'nin başkenti neresidir?"
              langtune chat --model default
            """,
        subcommands: [Inspect.self, Tokenize.self, Score.self, Generate.self, Chat.self, Serve.self, Train.self, Eval.self, Merge.self, Quantize.self, Demo.self, Bench.self, AdapterInit.self]
    )
}

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "GGUF file, safetensors folder, or a built-in name: `default` or `smollm2-135m` (SmolLM2-135M-Instruct), `gemma3-270m` (Gemma 3 270M). (default: `default`; `demo`: gemma3-270m)")
    var model: String?

    /// What `--model` names, `default` when it was not given (`demo` picks its own).
    var spec: String { model ?? "default" }

    @Option(name: .long, help: "A LoRA adapter folder (PEFT format) to apply on top of the model.")
    var adapter: String?

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Precision: f32 (float32 everywhere, the default), or bf16: matrix products with bfloat16 inputs and float32 accumulation where the CPU has bf16 units (AMX, AVX512-BF16), and on every CPU decoding with a bfloat16 KV cache and int8-quantized inputs for the quantized weights' products (as llama.cpp decodes).",
        valueName: "f32|bf16"))
    var dtype: String = "f32"

    @Option(name: .long, help: ArgumentHelp(
        "Base projections: nf4 (quantized, as a QLoRA base), none (as stored), or auto: nf4 when --adapter's train_config.json says it was trained on an NF4 base.",
        valueName: "auto|nf4|none"))
    var quantize: String = "auto"

    func validate() throws {
        if dtype != "f32" && dtype != "bf16" { throw ValidationError("--dtype must be f32 or bf16") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if !["auto", "nf4", "none"].contains(quantize) { throw ValidationError("--quantize must be auto, nf4 or none") }
        if let problem = CPUTier.environmentProblem { throw ValidationError(problem) }
    }

    /// The NF4 base `--quantize` asks for: explicitly, or (auto) the one the adapter was trained on.
    var baseQuantization: FrozenQuantization? {
        let cache = QuantizedBaseCache.defaultRoot
        switch quantize {
        case "nf4": return FrozenQuantization(cacheDirectory: cache)
        case "none": return nil
        default:
            guard let adapter, let base = TrainingOptions.recordedFrozenBase(adapterFolder: adapter), base.hasPrefix("nf4") else { return nil }
            note("the adapter was trained on an NF4 base (\(base)); running the base as NF4 (--quantize none for the stored weights)")
            return FrozenQuantization(doubleQuant: base.contains("double"), cacheDirectory: cache)
        }
    }

    func load(quantization: FrozenQuantization? = nil) throws -> LanguageModel {
        try load(spec, quantization: quantization)
    }

    /// Loads `spec` (a command's own default model) with the other options.
    func load(_ spec: String, quantization: FrozenQuantization? = nil) throws -> LanguageModel {
        if let t = threads { setenv("OMP_NUM_THREADS", String(t), 1) }
        let lm = try LanguageModel(spec, adapter: adapter, backend: CPUBackend(threads: Threads(threads), bf16: dtype == "bf16"),
                                   quantization: quantization ?? baseQuantization)
        if let outcome = lm.model.quantizationCache { note(outcome.description) }
        return lm
    }
}

/// Sampling flags shared by `generate` and `chat`.
struct SamplingFlags: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy decoding.")
    var temperature: Double = 0
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: off).")
    var topK: Int = 0
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1: off).")
    var topP: Double = 1
    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p × the top probability (0: off).")
    var minP: Double = 0
    @Option(name: .customLong("repetition-penalty"), help: "Penalty for tokens already seen (1: off).")
    var repetitionPenalty: Double = 1
    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0
    @Option(name: .customLong("stop"), help: "Stop when the output contains this text (repeatable).")
    var stop: [String] = []

    func validate() throws {
        if temperature < 0 { throw ValidationError("--temperature must be >= 0") }
        if topK < 0 { throw ValidationError("--top-k must be >= 0") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
        if !(minP >= 0 && minP < 1) { throw ValidationError("--min-p must be in [0, 1)") }
        if repetitionPenalty <= 0 { throw ValidationError("--repetition-penalty must be > 0") }
    }

    var options: SamplingOptions {
        SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP,
                        repetitionPenalty: repetitionPenalty, seed: seed)
    }
}

/// Prints a value as one line of JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}

/// Writes to stderr (progress, notes) so stdout stays clean for results.
func note(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Keeps glibc from raising its mmap threshold as large buffers are freed. By default the threshold
/// grows to the size of each freed mmapped block (up to 32 MB), after which the trainer's per-layer
/// buffers come from the heap and stay resident when freed: on SmolLM2 QLoRA that is 601 MB peak RSS
/// instead of 368 MB with the threshold pinned at its 128 KB default (`bench memory`). Called by the
/// training commands; a no-op off glibc. The step loop's own buffers come from `Workspace` and
/// `ScratchCache`, so pinning costs no page faults there.
func pinMallocThreshold() {
    LangTune.pinMmapThreshold(bytes: 128 * 1024)
}
