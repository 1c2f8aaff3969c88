import ArgumentParser
import Foundation
import LangTune

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, sizes, tensor types, chat template.",
        discussion: "Reads only the headers and metadata; weights are mapped, not loaded.")

    @Argument(help: "GGUF file, safetensors folder, or `default`.")
    var model: String = "default"

    @Flag(help: "Print JSON.")
    var json = false

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
        let path = try LangTuneHome.resolve(model)
        let files = try ModelFiles.load(path)
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
