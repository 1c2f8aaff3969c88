/// Which part of each global batch, and of the validation set, a rank works on.
///
/// Every rank builds the same seeded batch plan and so knows every step's global batch;
/// it keeps its share and the gradients are summed. Examples are dealt round-robin in plan
/// order, so the shares of a length-grouped plan hold similar token counts.
public enum DataShard {
    /// Rank `rank`'s micro-batches of one optimizer step whose global micro-batches are `step`.
    /// The k-th example of the step (counting across micro-batches) goes to rank k mod size;
    /// a rank's parts of consecutive micro-batches are merged while they fit in `batchSize`
    /// examples, so it runs fewer, fuller micro-batches and never more examples at once than
    /// a single process would. One rank keeps the micro-batches as they are.
    public static func share<T>(of step: [[T]], rank: Int, size: Int, batchSize: Int) -> [[T]] {
        guard size > 1 else { return step }
        var out: [[T]] = []
        var k = 0
        for micro in step {
            var part: [T] = []
            for e in micro {
                if k % size == rank { part.append(e) }
                k += 1
            }
            guard !part.isEmpty else { continue }
            if let last = out.last, last.count + part.count <= max(1, batchSize) {
                out[out.count - 1] += part
            } else {
                out.append(part)
            }
        }
        return out
    }

    /// Rank `rank`'s share of a list (validation examples): every size-th, starting at `rank`.
    public static func share<T>(of items: [T], rank: Int, size: Int) -> [T] {
        guard size > 1 else { return items }
        return stride(from: rank, to: items.count, by: size).map { items[$0] }
    }
}
