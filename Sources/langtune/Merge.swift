import ArgumentParser
import Foundation
import LangTune

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a LoRA adapter into a model and write it as a Hugging Face folder or a GGUF file.",
        discussion: """
            Each adapted weight becomes W + scale·B·A (computed in float32 with float64
            sums); every other tensor is copied, dequantized to the output type.

              hf    config.json, model.safetensors, generation_config.json and the
                    tokenizer files (tokenizer.json is built from a GGUF vocabulary).
                    --dtype f32 (default, or the source's float type), f16, bf16.
              gguf  one llama.cpp file. --dtype f16 (default), f32, bf16, q8_0.

            Without --adapter the model is converted as it is.
            Example:
              langtune merge --model default --adapter out/adapter --output merged --format hf
            """)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.")
    var model: String = "default"
    @Option(help: "PEFT adapter folder (adapter_config.json + adapter_model.safetensors).")
    var adapter: String?
    @Option(help: "Output folder (hf) or file (gguf).")
    var output: String
    @Option(help: "hf or gguf (default: gguf when --output ends in .gguf, else hf).")
    var format: String?
    @Option(help: "Weight type: f32, f16, bf16 (both formats) or q8_0 (gguf only).")
    var dtype: String?
    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    var resolvedFormat: ExportFormat? {
        if let f = format { return ExportFormat(rawValue: f.lowercased()) }
        return output.lowercased().hasSuffix(".gguf") ? .gguf : .hf
    }

    var resolvedDType: DType? {
        guard let d = dtype?.lowercased() else { return nil }
        return ["f32": DType.f32, "f16": .f16, "bf16": .bf16, "q8_0": .q8_0][d]
    }

    func validate() throws {
        guard let f = resolvedFormat else { throw ValidationError("--format must be hf or gguf") }
        if dtype != nil {
            guard let d = resolvedDType else { throw ValidationError("--dtype must be f32, f16, bf16 or q8_0") }
            if d == .q8_0 && f == .hf { throw ValidationError("--dtype q8_0 is for --format gguf only") }
        }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let path = try LangTuneHome.resolve(model)
        let files = try ModelFiles.load(path)
        let lora = try adapter.map { try LoRAAdapter.load(from: $0, model: files.config) }
        let exporter = try ModelExporter(files: files, adapter: lora, threads: Threads(threads))
        let format = resolvedFormat!
        let start = Date()
        if let lora {
            let c = lora.config
            note("merging \(adapter!) (r \(c.rank), alpha \(c.alpha)\(c.useRSLoRA ? ", rsLoRA" : ""), \(c.targets.map(\.rawValue).joined(separator: ",")))")
        }
        try exporter.write(format: format, to: output, dtype: resolvedDType)
        note(String(format: "wrote %@ (%@) in %.1f s", output, format.rawValue, Date().timeIntervalSince(start)))
    }
}
