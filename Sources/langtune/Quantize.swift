import ArgumentParser
import Foundation
import LangTune

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model with its projections quantized to NF4 in bitsandbytes' layout (a QLoRA base others can load).",
        discussion: """
            The output is a Hugging Face folder (config.json with a bitsandbytes quantization_config,
            model.safetensors, tokenizer files). Each targeted projection is stored as bitsandbytes
            saves a 4-bit layer: `weight` (packed NF4 codes), `weight.absmax`, `weight.quant_map`,
            `weight.nested_absmax`, `weight.nested_quant_map` and `weight.quant_state.bitsandbytes__nf4`;
            embeddings, norms and the output head stay float32. transformers with bitsandbytes loads it
            (`AutoModelForCausalLM.from_pretrained(DIR)`). Tensor names are Hugging Face's whatever the source.

            Example:
              langtune quantize --model default --method nf4 --output smollm2-nf4
            """)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.") var model: String = "default"
    @Option(help: "Quantization method: nf4.") var method: String = "nf4"
    @Flag(name: .customLong("no-double-quant"), help: "Keep the NF4 block scales in float32 instead of 8 bits.") var noDoubleQuant = false
    @Option(help: "Quantized projections, from q,k,v,o,gate,up,down.") var targets: String = "q,k,v,o,gate,up,down"
    @Option(help: "Output folder.") var output: String

    func validate() throws {
        guard method == "nf4" else { throw ValidationError("--method must be nf4") }
        for t in targets.split(separator: ",") where LoRATarget(short: String(t)) == nil {
            throw ValidationError("unknown target \"\(t)\"; use q,k,v,o,gate,up,down")
        }
    }

    func run() throws {
        let files = try ModelFiles.load(try LangTuneHome.resolve(model))
        let q = FrozenQuantization(targets: Set(targets.split(separator: ",").compactMap { LoRATarget(short: String($0)) }),
                                   doubleQuant: !noDoubleQuant)
        try ModelExporter(files: files, adapter: nil).writeHF(to: output, dtype: .f32, quantization: q)
        let size = (try? FileManager.default.attributesOfItem(atPath: output + "/model.safetensors")[.size] as? Int) ?? 0
        note("wrote \(output) (model.safetensors \(size / 1_000_000) MB, NF4\(noDoubleQuant ? "" : " with double quantization") on \(q.targets.map(\.rawValue).sorted().joined(separator: ",")))")
    }
}
