import ArgumentParser
import Foundation
import LangTune

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, sizes, tensor types, chat template.",
        discussion: """
            Reads only the headers and metadata; weights are mapped, not loaded.

            --fertility FILE measures how many tokens this model's tokenizer spends per word and per
            character on FILE (plain text, or a dataset's questions, answers and contexts) and compares
            it with an English text (data/fertility/en.txt, built in; data/fertility/tr.txt and zh.txt
            are its translations). A language that costs 2x the tokens trains and generates 2x slower
            and fits half as much context.

            --memory estimates the peak memory of a training run by part (frozen weights, embeddings,
            LoRA parameters, gradients, optimizer state, activations, logits) from the shapes alone.
            With --ranks, also the data-parallel case (`mpirun -np N langtune train`): the gradient bytes
            summed per optimizer step, the allreduce time at each --bandwidth, and with --seconds-per-sequence
            (measured: `bench memory`, or a run's tokens/s) the step time and speedup on paper.

            Examples:
              langtune inspect default
              langtune inspect default --fertility ../shared/data/tquad/dev-v0.1.json
              langtune inspect default --memory --method qlora --batch-size 2
              langtune inspect shape:llama3-8b --memory --method qlora --batch-size 1 --checkpoint-activations
              langtune inspect shape:llama3-8b --memory --ranks 2,8,64 --bandwidth 10,100 --seconds-per-sequence 153 --global-batch 64
            """)

    @Argument(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.")
    var model: String = "default"

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Measure the tokenizer's tokens per word and per character on this file, against English.")
    var fertility: String?

    @Flag(help: "Print the expected peak memory of training this model, by part (MODEL may be `shape:llama3-8b`, `shape:llama3.2-1b` or `shape:smollm2-135m`).")
    var memory = false
    @Option(help: "With --memory: lora or qlora.") var method: String = "lora"
    @Option(help: "With --memory: LoRA rank.") var rank: Int = 16
    @Option(name: .customLong("max-seq-len"), help: "With --memory: tokens per sequence.") var maxSeqLen: Int = 512
    @Option(name: .customLong("batch-size"), help: "With --memory: sequences per micro-batch.") var batchSize: Int = 4
    @Flag(name: .customLong("checkpoint-activations"), help: "With --memory: recompute activations in the backward pass.")
    var checkpointActivations = false
    @Option(help: "With --memory: data-parallel rank counts (e.g. 2,4,8): gradient bytes exchanged per step and the allreduce time.")
    var ranks: String?
    @Option(help: "With --ranks: network bandwidths in Gb/s.") var bandwidth: String = "10,100"
    @Option(name: .customLong("seconds-per-sequence"), help: "With --ranks: measured compute per sequence on one rank, for the step time and speedup.")
    var secondsPerSequence: Double = 0
    @Option(name: .customLong("global-batch"), help: "With --ranks: sequences per optimizer step, all ranks together (default: --batch-size).")
    var globalBatch: Int?

    func runMemory() throws {
        guard let m = MemoryEstimate.Method(rawValue: method) else { throw ValidationError("--method must be lora or qlora") }
        let config: LlamaConfig
        // A shape has no file: it is estimated as `bench memory` builds it (bf16 embeddings and head).
        var embeddingBytes = 4
        if model.hasPrefix("shape:") {
            let name = String(model.dropFirst("shape:".count))
            guard let c = LlamaConfig.namedShapes[name] else {
                throw ValidationError("unknown shape \(name); known: \(LlamaConfig.namedShapes.keys.sorted().joined(separator: ", "))")
            }
            config = c
            embeddingBytes = 2
        } else {
            let files = try ModelFiles.load(try LangTuneHome.resolve(model))
            config = files.config
            // QLoRA keeps 16-bit embeddings as stored (LlamaModel); everything else becomes float32.
            if m == .qlora, let e = files.tensors["model.embed_tokens.weight"], e.dtype == .bf16 || e.dtype == .f16 { embeddingBytes = 2 }
        }
        let e = MemoryEstimate.training(config: config, method: m, rank: rank, seqLen: maxSeqLen, batchSize: batchSize,
                                        checkpointActivations: checkpointActivations, embeddingBytesPerValue: embeddingBytes)
        let scaling = ScalingModel(secondsPerSequence: secondsPerSequence, globalBatch: globalBatch ?? batchSize,
                                   gradientBytes: ScalingModel.gradientBytes(config: config, rank: rank))
        let rows = try ranks.map { ScalingRow.rows(scaling, ranks: try parseList($0, "--ranks"), gbps: try parseList(bandwidth, "--bandwidth")) }
        if json {
            struct Parallel: Encodable { let model: ScalingModel; let rows: [ScalingRow] }
            struct Out: Encodable { let parts: [MemoryEstimate.Part]; let total_bytes: Int; let data_parallel: Parallel? }
            try printJSON(Out(parts: e.parts, total_bytes: e.total, data_parallel: rows.map { Parallel(model: scaling, rows: $0) }))
            return
        }
        print("expected peak memory: \(method) r=\(rank), \(batchSize) × \(maxSeqLen) tokens\(checkpointActivations ? ", activation checkpointing" : "") (\(model))")
        for p in e.parts { print(String(format: "  %8.2f GB  %@", Double(p.bytes) / 1e9, p.name)) }
        print(String(format: "  %8.2f GB  total", Double(e.total) / 1e9))
        if let rows { ScalingRow.print(rows, model: scaling) }
    }

    @Option(name: .customLong("english"), help: "English text to compare with (default: the built-in reference).")
    var englishFile: String?

    struct FertilityReport: Encodable {
        var file: String
        var language: String
        var text: FertilityStats
        var english: FertilityStats
        /// file / English, per word and per character.
        var word_ratio: Double
        var character_ratio: Double
    }

    func runFertility(_ path: String, _ files: ModelFiles) throws {
        let tokenizer = try Tokenizer(source: files.tokenizer)
        let text = try Fertility.text(ofFile: path)
        let english = try englishFile.map { try Fertility.text(ofFile: $0) } ?? Fertility.englishReference
        let t = Fertility.measure(text, tokenizer: tokenizer), e = Fertility.measure(english, tokenizer: tokenizer)
        guard t.words > 0, e.words > 0 else { throw ValidationError("\(path): no words to measure") }
        let r = FertilityReport(file: path, language: QAPrompt.detectLanguage(String(text.prefix(20_000))), text: t, english: e,
                                word_ratio: t.tokensPerWord / e.tokensPerWord, character_ratio: t.tokensPerCharacter / e.tokensPerCharacter)
        if json { try printJSON(r); return }
        func row(_ name: String, _ s: FertilityStats) -> String {
            String(name.prefix(25)).padding(toLength: 26, withPad: " ", startingAt: 0)
                + String(format: "%10d %9d %9d %12.2f %12.3f %12.2f", s.characters, s.words, s.tokens, s.tokensPerWord, s.tokensPerCharacter, s.bytesPerToken)
        }
        print("tokenizer fertility of \(files.path)")
        print("".padding(toLength: 26, withPad: " ", startingAt: 0) + "     chars     words    tokens  tokens/word  tokens/char  bytes/token")
        print(row("\(URL(fileURLWithPath: path).lastPathComponent) (\(r.language))", t))
        print(row(englishFile.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "English reference", e))
        print(String(format: "%@ costs %.2fx English's tokens per word (%.2fx per character).", r.language, r.word_ratio, r.character_ratio))
        print(String(format: "If the file says what the English text says (data/fertility/*.txt are translations), it takes %.2fx the tokens.",
                     Double(t.tokens) / Double(e.tokens)))
    }

    struct Report: Encodable {
        var path: String
        var format: String
        var architecture: String
        var layers: Int
        var hidden_size: Int
        var intermediate_size: Int
        var heads: Int
        var kv_heads: Int
        var head_dim: Int
        var vocab_size: Int
        var context_length: Int
        var rope_theta: Double
        var rope_scaling: String?
        var tied_embeddings: Bool
        var parameters: Int
        var tensor_dtypes: [String: Int]
        var chat_template: String
        var backend: String
    }

    func run() throws {
        if memory { return try runMemory() }
        let path = try LangTuneHome.resolve(model)
        let files = try ModelFiles.load(path)
        if let fertility { return try runFertility(fertility, files) }
        let c = files.config
        let dtypes = Dictionary(uniqueKeysWithValues: files.dtypeHistogram.map { ($0.key.description, $0.value) })
        let family = try files.chatTemplate.map { try ChatTemplate($0).family.rawValue } ?? "none"
        let r = Report(path: path, format: files.format.rawValue, architecture: c.architecture, layers: c.numLayers,
                       hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize, heads: c.numHeads,
                       kv_heads: c.numKVHeads, head_dim: c.headDim, vocab_size: c.vocabSize,
                       context_length: c.maxPositionEmbeddings, rope_theta: c.ropeTheta,
                       rope_scaling: c.ropeScaling?.type, tied_embeddings: c.tieWordEmbeddings,
                       parameters: files.parameterCount,
                       tensor_dtypes: dtypes, chat_template: family, backend: CPUBackend().name)
        if json { try printJSON(r); return }
        print("""
            \(r.path) (\(r.format))
              architecture      \(r.architecture), \(r.layers) layers
              hidden size       \(r.hidden_size) (MLP \(r.intermediate_size))
              attention heads   \(r.heads) (\(r.kv_heads) key/value heads of \(r.head_dim))
              vocabulary        \(r.vocab_size)
              context length    \(r.context_length), RoPE θ \(r.rope_theta)\(r.rope_scaling.map { ", scaling \($0)" } ?? "")
              embeddings        \(r.tied_embeddings ? "tied to the output head" : "separate output head")
              parameters        \(r.parameters.formatted())
              tensor types      \(r.tensor_dtypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
              chat template     \(r.chat_template)
              backend           \(r.backend)
            """)
    }
}
