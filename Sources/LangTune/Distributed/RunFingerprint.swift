import CLangTuneKernels
import Foundation

/// Digests of what every rank of a job must share: the training settings, the training and
/// validation examples (token ids and labels, in order) and the frozen model. Compared at
/// start-up (`agree`), so ranks started with different data or models are refused instead
/// of silently averaging gradients of different runs.
public struct RunFingerprint: Sendable, Equatable {
    /// (what, digest), in a fixed order.
    public var parts: [(name: String, digest: UInt64)]

    public static func == (a: Self, b: Self) -> Bool { a.parts.elementsEqual(b.parts) { $0 == $1 } }

    public init(parts: [(name: String, digest: UInt64)]) { self.parts = parts }

    /// The values of `buffers` (an adapter's matrices), to check that the ranks' replicas stay equal.
    public init(name: String, buffers: [FloatBuffer]) {
        var h = UInt64(buffers.count)
        for b in buffers { h = lt_xxh64(b.pointer, Int64(b.count * 4), h) }
        self.init(parts: [(name, h)])
    }

    public init(options: TrainingOptions, train: [TokenizedExample], validation: [TokenizedExample], model: LlamaModel) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        // The model is compared by content: its path may differ from machine to machine.
        var settings = options
        settings.lora.baseModel = ""
        parts = [
            ("training settings", Self.digest(try? enc.encode(settings))),
            ("training data", Self.digest(train)),
            ("validation data", Self.digest(validation)),
            ("model", model.fingerprint(encoder: enc)),
        ]
    }

    static func digest(_ data: Data?) -> UInt64 {
        guard let data else { return 0 }
        return data.withUnsafeBytes { lt_xxh64($0.baseAddress, Int64($0.count), 0) }
    }

    static func digest(_ examples: [TokenizedExample]) -> UInt64 {
        var h = UInt64(examples.count)
        for e in examples {
            h = e.ids.withUnsafeBytes { lt_xxh64($0.baseAddress, Int64($0.count), h) }
            h = e.labels.withUnsafeBytes { lt_xxh64($0.baseAddress, Int64($0.count), h) }
        }
        return h
    }

    /// Checks that every rank has rank 0's digests; throws on every rank, naming what differs
    /// and on how many ranks, if any does not.
    public func agree(over collective: any Collective,
                      hint: String = "start every rank with the same command, data and model files") throws {
        guard collective.size > 1 else { return }
        var root = parts.map(\.digest)
        try root.withUnsafeMutableBytes { try collective.broadcast($0, root: 0) }
        let differs = try collective.sum(zip(parts, root).map { $0.digest == $1 ? 0 : 1 })
        let bad = zip(parts, differs).filter { $1 > 0 }.map { "\($0.name) (\(Int($1)) of \(collective.size) ranks differ from rank 0)" }
        guard bad.isEmpty else {
            throw CollectiveError("the ranks of this job disagree on the \(bad.joined(separator: ", ")); \(hint)")
        }
    }
}

extension LlamaModel {
    /// Shape, norms, and the start of the embedding table: cheap (no pass over the weights) and
    /// different for any two checkpoints of a model in practice, since training moves every norm.
    func fingerprint(encoder: JSONEncoder) -> UInt64 {
        var h = RunFingerprint.digest(try? encoder.encode(config))
        func mix(_ p: UnsafeRawPointer?, _ bytes: Int) { h = lt_xxh64(p, Int64(bytes), h) }
        mix(finalNorm.pointer, finalNorm.count * 4)
        for l in layers {
            mix(l.inputNorm.pointer, l.inputNorm.count * 4)
            mix(l.postAttentionNorm.pointer, l.postAttentionNorm.count * 4)
        }
        let head = 65_536
        if let d = embedding.dense {
            mix(d, min(head, embedding.outFeatures * embedding.inFeatures) * 4)
        } else if let b = embedding.blocks {
            mix(b.bytes.baseAddress, min(head, b.bytes.count))
        }
        return h
    }
}
