import CLangTuneKernels
import Foundation

extension LlamaModel {
    /// One decoding step for several independent sequences: `tokens[b]` is appended to
    /// `caches[b]` at that cache's own position. The projections run on all rows together
    /// (one matrix product instead of `B` matrix-vector products); attention reads each
    /// sequence's own cache. Returns the next-token logits, `[tokens.count * vocab]`.
    ///
    /// With `adapters`, row `b` runs with `adapters[b]` (nil: the base) instead of the model's adapter:
    /// the base products once for all rows, each row's rank-r LoRA product with its own adapter. Every
    /// product is then computed row by row (one weight read shared by all rows), so each row's logits
    /// are bit for bit those of `forward([token], cache:, adapter:)` alone: a served request answers
    /// the same whatever else shares its batch.
    public func decodeStep(_ tokens: [Int], caches: [KVCache], adapters: [LoRAAdapter?]? = nil) -> [Float] {
        let B = tokens.count
        precondition(B > 0 && caches.count == B, "decodeStep needs one cache per token")
        precondition(adapters.map { $0.count == B } ?? true, "decodeStep needs one adapter entry per token")
        let rows: RowAdapters = adapters.map { .perRow($0) } ?? .same(adapter)
        let c = config
        let H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKVHeads
        let qW = nH * hd, kvW = nKV * hd, I = c.intermediateSize
        for cache in caches { cache.reserve(cache.length + 1, bf16: backend.usesReducedPrecisionDecoding) }

        let x = FloatBuffer(count: B * H, zeroed: false)
        let h = FloatBuffer(count: B * H, zeroed: false)
        let q = FloatBuffer(count: B * qW, zeroed: false)
        let k = FloatBuffer(count: B * kvW, zeroed: false)
        let v = FloatBuffer(count: B * kvW, zeroed: false)
        let att = FloatBuffer(count: B * qW, zeroed: false)
        let tmp = FloatBuffer(count: B * max(H, qW), zeroed: false)
        let g = FloatBuffer(count: B * I, zeroed: false)
        let u = FloatBuffer(count: B * I, zeroed: false)
        let longest = caches.map(\.length).max()! + 1
        let scratch = FloatBuffer(count: B * nH * longest, zeroed: false)
        let scale = attentionScale

        embed(tokens, into: x)
        for (li, layer) in layers.enumerated() {
            for b in 0..<B { lt_rmsnorm(x.pointer + b * H, layer.inputNorm.pointer, h.pointer + b * H, Int64(H), c.rmsNormEps) }
            project(layer.q, .q, layer: li, x: h.pointer, rows: B, y: q.pointer, adapters: rows)
            project(layer.k, .k, layer: li, x: h.pointer, rows: B, y: k.pointer, adapters: rows)
            project(layer.v, .v, layer: li, x: h.pointer, rows: B, y: v.pointer, adapters: rows)
            for b in 0..<B {
                let p = caches[b].length
                positionQK(layer, li, q: q.pointer + b * qW, k: k.pointer + b * kvW, position: p)
                caches[b].store(layer: li, position: p, keys: k.pointer + b * kvW, values: v.pointer + b * kvW, rows: 1)
            }
            let window = attentionWindow(layer: li)
            backend.threads.parallelFor(B * nH) { s, e in
                for job in s..<e {
                    let b = job / nH, head = job % nH
                    let cache = caches[b]
                    // A sliding-window layer sees only the last `window` positions, this one included.
                    let start = window.map { max(0, cache.length + 1 - $0) } ?? 0
                    cache.attend(layer: li, q: q.pointer + b * qW, out: att.pointer + b * qW, T: 1, p0: cache.length - start,
                                 heads: nH, kvHeads: nKV, headDim: hd, scale: scale, h0: head, h1: head + 1,
                                 scratch: scratch.pointer + job * longest, from: start)
                }
            }
            project(layer.o, .o, layer: li, x: att.pointer, rows: B, y: tmp.pointer, adapters: rows)
            addResidual(tmp, norm: layer.gemma?.postAttention, to: x, rows: B)
            mlpResidual(layer, li, x: x, h: h, g: g, u: u, tmp: tmp, rows: B, adapters: rows)
        }
        for cache in caches { cache.length += 1 }
        for b in 0..<B { lt_rmsnorm(x.pointer + b * H, finalNorm.pointer, h.pointer + b * H, Int64(H), c.rmsNormEps) }
        var out = [Float](repeating: 0, count: B * lmHead.outFeatures)
        out.withUnsafeMutableBufferPointer { o in
            if adapters != nil { backend.linearRowwise(lmHead, x: h.pointer, rows: B, y: o.baseAddress!) }
            else { backend.linear(lmHead, x: h.pointer, rows: B, y: o.baseAddress!) }
        }
        softcapLogits(&out)
        return out
    }
}
