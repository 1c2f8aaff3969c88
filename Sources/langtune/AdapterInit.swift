import ArgumentParser
import Foundation
import LangTune

/// Writes a fresh PEFT adapter (hidden; for interop tests until `train` exists).
struct AdapterInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapter-init",
        abstract: "Write a freshly initialised PEFT LoRA adapter for a model.",
        shouldDisplay: false)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.")
    var model: String = "default"
    @Option(help: "Adapter folder to write.")
    var output: String
    @Option(help: "LoRA rank.")
    var rank: Int = 8
    @Option(help: "LoRA alpha (default: 2 × rank).")
    var alpha: Double?
    @Option(help: "Comma-separated targets: q,k,v,o,gate,up,down.")
    var targets: String = "q,v"
    @Option(help: "Random seed.")
    var seed: UInt64 = 0
    @Flag(name: .customLong("random-b"), help: "Fill B with seeded random values (PEFT starts it at zero).")
    var randomB = false
    @Option(name: .customLong("b-amplitude"), help: "B values are uniform in ±this with --random-b.")
    var bAmplitude: Float = 0.05
    @Flag(help: "Use rsLoRA scaling (alpha/√r).")
    var rslora = false

    func run() throws {
        var list: [LoRATarget] = []
        for s in targets.split(separator: ",") {
            guard let t = LoRATarget(short: String(s)) else {
                throw ValidationError("unknown target \(s) (q, k, v, o, gate, up, down)")
            }
            if !list.contains(t) { list.append(t) }
        }
        let path = try LangTuneHome.resolve(model)
        let files = try ModelFiles.load(path)
        let config = LoRAConfig(rank: rank, alpha: alpha ?? Double(2 * rank), targets: list, useRSLoRA: rslora,
                                baseModel: path)
        let adapter = try LoRAAdapter(config: config, model: files.config, seed: seed)
        if randomB { adapter.randomizeB(seed: seed &+ 1, amplitude: bAmplitude) }
        try adapter.save(to: output)
        note("wrote \(output): \(adapter.parameterCount) parameters")
    }
}
