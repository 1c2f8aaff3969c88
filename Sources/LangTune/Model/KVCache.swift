/// Keys and values of every past position, per layer, float32 `[position, kvHeads*headDim]`.
/// Grows by doubling; `length` is the number of positions already processed.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let width: Int
    public private(set) var capacity: Int
    public var length: Int = 0
    var keys: [FloatBuffer]
    var values: [FloatBuffer]

    public init(config: LlamaConfig, capacity: Int = 256) {
        layers = config.numLayers
        width = config.numKVHeads * config.headDim
        self.capacity = max(capacity, 1)
        keys = (0..<layers).map { _ in FloatBuffer(count: max(capacity, 1) * config.numKVHeads * config.headDim) }
        values = (0..<layers).map { _ in FloatBuffer(count: max(capacity, 1) * config.numKVHeads * config.headDim) }
    }

    /// Makes room for `needed` positions in total.
    func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var newCap = capacity
        while newCap < needed { newCap *= 2 }
        for l in 0..<layers {
            for which in 0..<2 {
                let old = which == 0 ? keys[l] : values[l]
                let b = FloatBuffer(count: newCap * width)
                b.pointer.update(from: old.pointer, count: length * width)
                if which == 0 { keys[l] = b } else { values[l] = b }
            }
        }
        capacity = newCap
    }

    /// Forgets everything (a new conversation).
    public func reset() { length = 0 }
}
