import Foundation

/// Where `ModelExporter` writes a model.
public enum ExportFormat: String, Sendable, CaseIterable {
    /// A Hugging Face folder: config.json, model.safetensors, tokenizer and generation files.
    case hf
    /// One llama.cpp GGUF file.
    case gguf
}

/// A model's tensors with a LoRA adapter merged in (`W' = W + scale·B·A`),
/// written as a Hugging Face folder or a GGUF file.
///
/// Merged weights are computed one tensor at a time while the output is
/// written, so exporting needs memory for one float32 tensor, not the model.
public struct ModelExporter: Sendable {
    public let files: ModelFiles
    public let adapter: LoRAAdapter?
    /// Threads the merge arithmetic uses.
    public let threads: Threads

    /// Checks that `adapter` fits `files` (layer count, matrix shapes).
    public init(files: ModelFiles, adapter: LoRAAdapter?, threads: Threads = Threads()) throws {
        self.files = files
        self.adapter = adapter
        self.threads = threads
        guard let adapter else { return }
        let c = files.config
        guard adapter.layers.count == c.numLayers else {
            throw LoRAError("the adapter has \(adapter.layers.count) layers, the model \(files.path) has \(c.numLayers)")
        }
        for (i, layer) in adapter.layers.enumerated() {
            for (t, w) in layer {
                let (out, inF) = t.shape(c)
                guard w.outFeatures == out, w.inFeatures == inF, w.a.count == w.rank * inF, w.b.count == out * w.rank else {
                    throw LoRAError("layer \(i) \(t.rawValue): the adapter's matrices are \(w.outFeatures)×\(w.rank)·\(w.rank)×\(w.inFeatures), the model \(files.path) needs \(out)×\(inF)")
                }
            }
        }
    }

    /// The scale merged weights use: PEFT's alpha/r (or alpha/√r), in float64.
    public var scale: Double {
        guard let c = adapter?.config else { return 0 }
        return LoRAAdapter.peftScale(alpha: c.alpha, rank: c.rank, rsLoRA: c.useRSLoRA)
    }

    /// (layer, target) of an HF weight name the adapter changes, or nil.
    func adaptation(of name: String) -> LoRAWeights? {
        guard let adapter, name.hasPrefix("model.layers."), name.hasSuffix(".weight") else { return nil }
        let parts = name.split(separator: ".")
        guard parts.count == 6, let layer = Int(parts[2]), layer >= 0, layer < adapter.layers.count,
              let target = LoRATarget(rawValue: String(parts[4])), parts[3] == target.block else { return nil }
        return adapter.layers[layer][target]
    }

    /// The float32 values of tensor `name` (HF name, row-major `[out, in]`), with the
    /// adapter merged in when it adapts this weight.
    public func values(_ name: String) throws -> [Float] {
        var v: [Float]
        if let q = files.nf4[name] { v = q.dequantize() } else {
            guard let t = files.tensors[name] else { throw FormatError(file: files.path, "missing tensor \"\(name)\"") }
            v = try dequantize(t)
        }
        if let w = adaptation(of: name) { Self.addDelta(&v, w, scale: scale, threads: threads) }
        return v
    }

    /// `w += scale · B·A` with each entry's sum over the rank taken in float64,
    /// then `Float(Double(w) + scale · sum)`: one rounding per weight.
    public static func addDelta(_ w: inout [Float], _ lora: LoRAWeights, scale: Double, threads: Threads = Threads()) {
        let r = lora.rank, inF = lora.inFeatures, out = lora.outFeatures
        precondition(w.count == out * inF, "weight of \(w.count) values is not \(out)×\(inF)")
        let a = lora.a.pointer, b = lora.b.pointer
        w.withUnsafeMutableBufferPointer { wp in
            let box = UncheckedBox(wp.baseAddress!)
            threads.parallelFor(out) { s, e in
                var row = [Double](repeating: 0, count: inF)
                for o in s..<e {
                    for i in 0..<inF { row[i] = 0 }
                    for k in 0..<r {
                        let bk = Double(b[o * r + k])
                        let ak = a + k * inF
                        for i in 0..<inF { row[i] += bk * Double(ak[i]) }
                    }
                    let dst = box.value + o * inF
                    for i in 0..<inF { dst[i] = Float(Double(dst[i]) + scale * row[i]) }
                }
            }
        }
    }

    /// The model with the adapter merged, in memory: adapted weights become
    /// float32 tensors, the others stay as they are. For checks and small models.
    public func mergedFiles() throws -> ModelFiles {
        var tensors = files.tensors
        for name in Set(tensors.keys).union(files.nf4.keys).sorted() where adaptation(of: name) != nil || files.nf4[name] != nil {
            let shape = tensors[name]?.shape ?? files.nf4[name]!.shape
            tensors[name] = WeightTensor.float32(name: name, shape: shape, values: try values(name))
        }
        return ModelFiles(path: files.path, format: files.format, config: files.config, tensors: tensors,
                          tokenizer: files.tokenizer, chatTemplate: files.chatTemplate,
                          generationDefaults: files.generationDefaults)
    }

    /// Names (HF) of the tensors an export holds, in `requiredTensors` order plus q/k/v biases.
    var exportedTensorNames: [(name: String, shape: [Int])] {
        ModelFiles.requiredTensors(files.config)
    }

    /// The float type an HF export uses by default: the source's when its 2-D
    /// weights are all F16 or all BF16, else F32.
    public var defaultHFType: DType {
        let types = Set(exportedTensorNames.filter { $0.shape.count == 2 }.compactMap { files.tensors[$0.name]?.dtype })
        if types == [.f16] { return .f16 }
        if types == [.bf16] { return .bf16 }
        return .f32
    }

    /// Writes the merged model. `dtype`: F32, F16 or BF16 for `hf` (default: see
    /// `defaultHFType`); F32, F16, BF16 or Q8_0 for `gguf` (default F16).
    public func write(format: ExportFormat, to path: String, dtype: DType? = nil) throws {
        switch format {
        case .hf: try writeHF(to: path, dtype: dtype ?? defaultHFType)
        case .gguf: try writeGGUF(to: path, dtype: dtype ?? .f16)
        }
    }

    /// Bytes of float values stored as `dtype` (F32, F16, BF16 or Q8_0). Values F16
    /// cannot hold (|x| > 65504, or a Q8_0 block scale above it) are refused rather than turned into infinities.
    static func encode(_ v: [Float], as dtype: DType, name: String) throws -> [UInt8] {
        // Q8_0 keeps an F16 scale of amax/127 per block.
        let limit: Float = dtype == .f16 ? 65504 : dtype == .q8_0 ? 65504 * 127 : .infinity
        if let i = v.firstIndex(where: { !(abs($0) <= limit) && $0.isFinite }) {
            throw FormatError(file: name, "value \(v[i]) at index \(i) does not fit \(dtype); use bf16 or f32")
        }
        switch dtype {
        case .f32: return v.withUnsafeBytes { Array($0) }
        case .f16, .bf16:
            var out = [UInt16](repeating: 0, count: v.count)
            v.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                    if dtype == .f16 { convertRowF32ToF16(s, d, count: v.count) } else { convertRowF32ToBF16(s, d, count: v.count) }
                }
            }
            return out.withUnsafeBytes { Array($0) }
        case .q8_0: return quantizeQ8_0(v)
        default: preconditionFailure("cannot encode floats as \(dtype)")
        }
    }
}

extension WeightTensor {
    /// A float32 tensor owning a copy of `values`.
    static func float32(name: String, shape: [Int], values: [Float]) -> WeightTensor {
        let storage = ByteStorage(copying: values)
        return WeightTensor(name: name, shape: shape, dtype: .f32, storage: storage, offset: 0, byteCount: values.count * 4)
    }
}
