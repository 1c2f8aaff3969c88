import CLangTuneKernels

/// Keys and values of every past position, per layer, `[position, kvHeads*headDim]`: float32, or
/// bfloat16 when the model runs `--dtype bf16` (half the memory; attention reads them back exactly).
/// The model picks the storage on first use. Grows by doubling; `length` is the number of positions
/// already processed.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let width: Int
    public private(set) var capacity: Int
    public var length: Int = 0
    /// Whether keys and values are stored as bfloat16.
    public private(set) var storesBF16 = false
    private var keys: [FloatBuffer] = []
    private var values: [FloatBuffer] = []
    private var keys16: [BF16Buffer] = []
    private var values16: [BF16Buffer] = []

    public init(config: LlamaConfig, capacity: Int = 256) {
        layers = config.numLayers
        width = config.numKVHeads * config.headDim
        self.capacity = max(capacity, 1)
        allocate(self.capacity, keeping: 0)
    }

    /// An empty cache shaped like `other` (its layers, width and storage: a bf16 cache's copy is never
    /// first allocated as float32).
    init(like other: KVCache, capacity: Int) {
        layers = other.layers
        width = other.width
        storesBF16 = other.storesBF16
        self.capacity = max(capacity, 1)
        allocate(self.capacity, keeping: 0)
    }

    /// Bytes the stored keys and values take now (capacity, not length).
    public var byteCount: Int { 2 * layers * capacity * width * (storesBF16 ? 2 : 4) }

    private func allocate(_ cap: Int, keeping rows: Int) {
        let n = cap * width, keep = rows * width
        if storesBF16 {
            let (ok, ov) = (keys16, values16)
            keys16 = (0..<layers).map { _ in BF16Buffer(count: n) }
            values16 = (0..<layers).map { _ in BF16Buffer(count: n) }
            for l in 0..<min(layers, ok.count) where keep > 0 {
                keys16[l].pointer.update(from: ok[l].pointer, count: keep)
                values16[l].pointer.update(from: ov[l].pointer, count: keep)
            }
            keys = []; values = []
        } else {
            let (ok, ov) = (keys, values)
            keys = (0..<layers).map { _ in FloatBuffer(count: n) }
            values = (0..<layers).map { _ in FloatBuffer(count: n) }
            for l in 0..<min(layers, ok.count) where keep > 0 {
                keys[l].pointer.update(from: ok[l].pointer, count: keep)
                values[l].pointer.update(from: ov[l].pointer, count: keep)
            }
            keys16 = []; values16 = []
        }
    }

    /// Makes room for `needed` positions in total, stored as bf16 or float32. A cache changes its
    /// storage only while empty (one cache serves one model).
    func reserve(_ needed: Int, bf16: Bool = false) {
        if bf16 != storesBF16 {
            precondition(length == 0, "a KV cache holding positions cannot switch between float32 and bf16")
            storesBF16 = bf16
            allocate(capacity, keeping: 0)
        }
        guard needed > capacity else { return }
        var newCap = capacity
        while newCap < needed { newCap *= 2 }
        allocate(newCap, keeping: length)
        capacity = newCap
    }

    /// Writes `rows` positions from `position` on (float32 keys and values, `[rows, width]`).
    func store(layer: Int, position: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows: Int) {
        precondition(position + rows <= capacity)
        let o = position * width, n = rows * width
        if storesBF16 {
            lt_f32_to_bf16(k, keys16[layer].pointer + o, Int64(n))
            lt_f32_to_bf16(v, values16[layer].pointer + o, Int64(n))
        } else {
            (keys[layer].pointer + o).update(from: k, count: n)
            (values[layer].pointer + o).update(from: v, count: n)
        }
    }

    /// Causal attention of `T` queries at positions `from + p0 ..< from + p0 + T` over this layer's
    /// cached positions `from ..< from + p0 + T` (already stored), heads `h0..<h1`; `scratch` holds
    /// `p0 + T` floats. A `from` past 0 drops the oldest keys (a sliding window: the kernel sees
    /// the keys from there on as positions 0, 1, …).
    func attend(layer: Int, q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, T: Int, p0: Int, heads nH: Int,
                kvHeads nKV: Int, headDim hd: Int, scale: Float, h0: Int, h1: Int, scratch: UnsafeMutablePointer<Float>,
                from start: Int = 0) {
        let o = start * width
        if storesBF16 {
            precondition(hd <= 1024, "bf16 KV cache: head dimension \(hd) over 1024")
            lt_attention_causal_bf16(q, keys16[layer].pointer + o, values16[layer].pointer + o, out, Int64(T), Int64(p0), Int64(nH),
                                     Int64(nKV), Int64(hd), Int64(width), scale, Int64(h0), Int64(h1), scratch)
        } else {
            lt_attention_causal(q, keys[layer].pointer + o, values[layer].pointer + o, out, Int64(T), Int64(p0), Int64(nH), Int64(nKV),
                                Int64(hd), Int64(width), scale, Int64(h0), Int64(h1), scratch)
        }
    }

    /// Makes this cache hold `count` positions copied from `other` (same model and storage), replacing
    /// what it held: a server starts a request from a cached prompt prefix.
    func copyPrefix(of other: KVCache, count: Int) {
        precondition(count <= other.length && other.layers == layers && other.width == width)
        length = 0
        reserve(count, bf16: other.storesBF16)
        let n = count * width
        for l in 0..<layers {
            if storesBF16 {
                keys16[l].pointer.update(from: other.keys16[l].pointer, count: n)
                values16[l].pointer.update(from: other.values16[l].pointer, count: n)
            } else {
                keys[l].pointer.update(from: other.keys[l].pointer, count: n)
                values[l].pointer.update(from: other.values[l].pointer, count: n)
            }
        }
        length = count
    }

    /// Forgets everything (a new conversation).
    public func reset() { length = 0 }
}
