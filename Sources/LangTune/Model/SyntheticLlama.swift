import CLangTuneKernels
import Foundation

/// How a synthetic model stores its frozen projection weights.
public enum SyntheticWeights: String, Sendable, CaseIterable {
    /// NF4 with bitsandbytes' double quantization (QLoRA's base).
    case nf4
    /// bfloat16, dequantized tile by tile (a LoRA base that fits where float32 does not).
    case bf16
    /// float32 (LangTune's LoRA base for real models).
    case f32
}

extension LlamaModel {
    /// A model of `config`'s shape with seeded random weights and no file behind it: what
    /// `bench memory` trains to measure an 8B-class run on machines that do not hold the weights.
    ///
    /// Projections are uniform in ±0.02·√3 (standard deviation 0.02, transformers' initializer
    /// range), norms are 1, embeddings and the output head are bfloat16 (as QLoRA keeps them).
    /// NF4 and float32 matrices are drawn one at a time, bf16 ones in 64k-value chunks, so building
    /// never needs more than one float32 matrix beyond the model itself. The values depend on `seed` only, not on
    /// the thread count (fixed 64k-value chunks, each with its own generator).
    public static func synthetic(config c: LlamaConfig, projections: SyntheticWeights, doubleQuant: Bool = true,
                                 seed: UInt64 = 0, backend: any ComputeBackend = CPUBackend()) -> LlamaModel {
        let threads = backend.threads
        var tensorIndex: UInt64 = 0
        func values(_ count: Int) -> FloatBuffer {
            tensorIndex += 1
            let buf = FloatBuffer(count: count, zeroed: false)
            fillUniform(buf.pointer, count: count, bound: 0.02 * Float(3).squareRoot(),
                        seed: seed &+ tensorIndex &* 0x9E37_79B9_7F4A_7C15, threads: threads)
            return buf
        }
        func bf16(_ name: String, out: Int, in inF: Int) -> LinearWeight {
            tensorIndex += 1
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: out * inF * 2, alignment: 64)
            let dst = bytes.bindMemory(to: UInt16.self, capacity: out * inF)
            // Chunk by chunk: an 8B model's 525M-value embedding never exists as float32 (2.1 GB).
            forEachUniformChunk(count: out * inF, bound: 0.02 * Float(3).squareRoot(),
                                seed: seed &+ tensorIndex &* 0x9E37_79B9_7F4A_7C15, threads: threads) { start, chunk in
                lt_f32_to_bf16(chunk.baseAddress!, dst + start, Int64(chunk.count))
            }
            let storage = ByteStorage(base: UnsafeRawPointer(bytes), count: out * inF * 2) { p, _ in
                UnsafeMutableRawPointer(mutating: p).deallocate()
            }
            let t = WeightTensor(name: name, shape: [out, inF], dtype: .bf16, storage: storage, offset: 0, byteCount: out * inF * 2)
            // A 2-D bf16 tensor in a buffer of exactly its size: the stored-form initializer cannot fail.
            return try! LinearWeight(blocksOnly: t)
        }
        func projection(_ name: String, _ target: LoRATarget) -> LinearWeight {
            let (out, inF) = target.shape(c)
            switch projections {
            case .bf16: return bf16(name, out: out, in: inF)
            case .f32:
                let f = values(out * inF)
                return LinearWeight(out: out, in: inF, values: f.array)
            case .nf4:
                let f = values(out * inF)
                let q = NF4Tensor.quantize(UnsafeBufferPointer(start: f.pointer, count: out * inF), shape: [out, inF],
                                           doubleQuant: doubleQuant, threads: threads)
                return LinearWeight(nf4: q)
            }
        }
        func ones() -> FloatBuffer {
            let b = FloatBuffer(count: c.hiddenSize, zeroed: false)
            b.pointer.update(repeating: 1, count: c.hiddenSize)
            return b
        }
        let embedding = bf16("model.embed_tokens.weight", out: c.vocabSize, in: c.hiddenSize)
        let layers = (0..<c.numLayers).map { i in
            let p = "model.layers.\(i)."
            return LlamaLayer(inputNorm: ones(), postAttentionNorm: ones(),
                              q: projection(p + "self_attn.q_proj.weight", .q), k: projection(p + "self_attn.k_proj.weight", .k),
                              v: projection(p + "self_attn.v_proj.weight", .v), o: projection(p + "self_attn.o_proj.weight", .o),
                              gate: projection(p + "mlp.gate_proj.weight", .gate), up: projection(p + "mlp.up_proj.weight", .up),
                              down: projection(p + "mlp.down_proj.weight", .down))
        }
        let head = c.tieWordEmbeddings ? nil : bf16("lm_head.weight", out: c.vocabSize, in: c.hiddenSize)
        return LlamaModel(config: c, backend: backend, embedding: embedding, layers: layers, finalNorm: ones(), lmHead: head)
    }

    /// How the frozen projections are stored, for logs and train_config.json: `float32`,
    /// `nf4, double-quantized`, `nf4`, or `source blocks (Q4_1, Q8_0)` (a GGUF's own), joined with
    /// " + " when layers mix them.
    public var frozenBaseDescription: String {
        var kinds: [String] = []
        var blockTypes = Set<String>()
        for l in layers {
            for w in l.projections {
                let k: String
                if let q = w.nf4 { k = q.doubleQuantized ? "nf4, double-quantized" : "nf4" }
                else if w.dense != nil { k = "float32" }
                else if w.hasBF16Copy { k = "bfloat16" }
                else { k = "source blocks"; if let t = w.blocks { blockTypes.insert("\(t.dtype)") } }
                if !kinds.contains(k) { kinds.append(k) }
            }
        }
        return kinds.map { $0 == "source blocks" ? "source blocks (\(blockTypes.sorted().joined(separator: ", ")))" : $0 }
            .joined(separator: " + ")
    }

    /// Bytes held by the frozen weights (projections, embeddings, head, norms), whatever their storage.
    public var frozenWeightBytes: Int {
        func bytes(_ w: LinearWeight) -> Int {
            let copy = w.hasBF16Copy ? 2 * w.outFeatures * w.inFeatures : 0
            if w.dense != nil { return 4 * w.outFeatures * w.inFeatures + copy }
            if let q = w.nf4 { return q.byteCount }
            return (w.blocks?.byteCount ?? 0) + copy
        }
        var total = bytes(embedding) + (lmHead === embedding ? 0 : bytes(lmHead)) + 4 * finalNorm.count
        for l in layers {
            total += l.projections.map(bytes).reduce(0, +)
            total += 4 * (l.inputNorm.count + l.postAttentionNorm.count)
        }
        return total
    }
}

/// `count` values uniform in [-bound, bound): chunks of 65,536 values, chunk i drawn from
/// SplitMix64(seed ^ i·golden), so the result is the same for any thread count.
func fillUniform(_ p: UnsafeMutablePointer<Float>, count: Int, bound: Float, seed: UInt64, threads: Threads) {
    forEachUniformChunk(count: count, bound: bound, seed: seed, threads: threads) { start, chunk in
        (p + start).update(from: chunk.baseAddress!, count: chunk.count)
    }
}

/// The values of `fillUniform`, handed to `body(start, values)` one chunk at a time (on worker threads).
func forEachUniformChunk(count: Int, bound: Float, seed: UInt64, threads: Threads,
                         _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
    let chunk = 1 << 16
    let chunks = (count + chunk - 1) / chunk
    threads.parallelFor(chunks) { c0, c1 in
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: chunk)
        defer { buf.deallocate() }
        for ci in c0..<c1 {
            var rng = SplitMix64(seed: seed ^ (UInt64(ci) &* 0xD1B5_4A32_D192_ED03))
            let s = ci * chunk, n = min(count, s + chunk) - s
            for i in 0..<n { buf[i] = (2 * rng.nextFloat() - 1) * bound }
            body(s, UnsafeBufferPointer(rebasing: buf[0..<n]))
        }
    }
}
