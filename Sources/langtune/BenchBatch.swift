import ArgumentParser
import Foundation
import LangTune

struct BenchBatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Batched decoding speed (what `serve` does each step), without HTTP.",
        discussion: """
            For each count in --rows: processes that many chat prompts one by one (as `serve` admits requests), then runs --steps decoding steps over all of them together with per-row adapters (`decodeStep`, the step `serve` runs). Reports the prompt tokens/s, the milliseconds per step, the aggregate generated tokens/s, and the process's CPU seconds per generated token: that last figure moves less than wall time when other work shares the cores.

            With --adapters N, row b runs adapter b mod N (random rank-16 adapters on all seven projections); 0 runs every row on the base. --dtype bf16 decodes with int8 inputs and a bfloat16 KV cache, as `serve --dtype bf16`.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Rows decoded together, comma-separated.") var rows: String = "1,4,16"
    @Option(help: "Decoding steps timed per row count.") var steps: Int = 32
    @Option(help: "Adapters the rows cycle through (0: the base).") var adapters: Int = 0

    func validate() throws {
        let list = rows.split(separator: ",").compactMap { Int($0) }
        if list.isEmpty || list.contains(where: { $0 < 1 }) { throw ValidationError("--rows takes positive counts, e.g. 1,4,16") }
        if steps < 1 || adapters < 0 { throw ValidationError("--steps must be >= 1 and --adapters >= 0") }
    }

    func run() throws {
        let lm = try modelOptions.load()
        let model = lm.model
        let list = try (0..<adapters).map { i -> LoRAAdapter in
            let a = try LoRAAdapter(config: LoRAConfig(rank: 16, alpha: 32), model: model.config, seed: UInt64(i))
            a.randomizeB(seed: UInt64(1000 + i), amplitude: 0.02)
            return a
        }
        let questions = ["What is the capital of France?", "Türkiye'nin başkenti neresidir?", "中国的首都是哪里？",
                         "Explain photosynthesis in one sentence.", "Name three primary colours."]
        note("bench batch: \(URL(fileURLWithPath: lm.files.path).lastPathComponent), \(model.backend.name), dtype \(modelOptions.dtype)")
        print("rows  prompt tok/s  ms/step  tokens/s  CPU s/token")
        for B in rows.split(separator: ",").compactMap({ Int($0) }) {
            let rowAdapters: [LoRAAdapter?] = (0..<B).map { list.isEmpty ? nil : list[$0 % list.count] }
            var caches: [KVCache] = [], last: [Int] = [], promptTokens = 0
            let t0 = Date()
            for b in 0..<B {
                let ids = try lm.promptIds(questions[b % questions.count], chat: true)
                let cache = KVCache(config: model.config, capacity: ids.count + steps + 1)
                last.append(Sampler.argmax(model.forward(ids, cache: cache, logits: .last, adapter: rowAdapters[b])))
                caches.append(cache)
                promptTokens += ids.count
            }
            let prefill = Date().timeIntervalSince(t0)
            let cpu0 = processCPUSeconds(), t1 = Date()
            for _ in 0..<steps {
                let logits = model.decodeStep(last, caches: caches, adapters: rowAdapters)
                let V = model.vocabSize
                last = (0..<B).map { b in Sampler.argmax(Array(logits[(b * V)..<((b + 1) * V)])) }
            }
            let wall = Date().timeIntervalSince(t1), cpu = processCPUSeconds() - cpu0
            let tokens = Double(B * steps)
            print(String(format: "%4d  %12.1f  %7.1f  %8.1f  %11.4f", B, Double(promptTokens) / prefill, 1000 * wall / Double(steps),
                         tokens / wall, cpu / tokens))
        }
    }
}
