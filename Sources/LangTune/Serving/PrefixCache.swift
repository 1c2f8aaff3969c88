import Foundation

/// Keys and values of prompt prefixes a server has already processed, reused by later requests that
/// start the same way (the system prompt and chat-template header every request of a deployment
/// shares). Only for a model whose prompt products are row by row (`--dtype bf16`: int8 inputs, each
/// row quantized on its own), where a position's keys and values do not depend on how the prompt was
/// cut: prompts always run in chunks of `chunk` tokens from position 0, so a request that takes a
/// cached prefix computes exactly what it computes without it.
///
/// Bounded by bytes (least recently used entries go first); entries are per adapter (an adapter
/// changes the keys and values). Used by the decoding thread only.
final class PrefixCache {
    /// Prompt tokens per chunk; prefixes are reused in whole chunks.
    let chunk: Int
    let maxBytes: Int
    private var entries: [Entry] = []
    private var clock = 0

    private final class Entry {
        let tokens: [Int]
        let adapter: LoRAAdapter?
        let cache: KVCache
        var used: Int
        init(tokens: [Int], adapter: LoRAAdapter?, cache: KVCache, used: Int) {
            self.tokens = tokens
            self.adapter = adapter
            self.cache = cache
            self.used = used
        }
    }

    init(chunk: Int = 8, maxBytes: Int = 128 << 20) {
        precondition(chunk > 0)
        self.chunk = chunk
        self.maxBytes = maxBytes
    }

    /// Bytes the cached keys and values take.
    var byteCount: Int { entries.reduce(0) { $0 + $1.cache.byteCount } }

    /// Runs `prompt` into the empty `cache` with `adapter`: whole chunks of the longest cached prefix are
    /// copied, the rest runs chunk by chunk; returns the last position's logits and how many positions
    /// came from the cache. The prompt's whole chunks are then remembered for later requests.
    func prefill(_ prompt: [Int], cache: KVCache, adapter: LoRAAdapter?, model: LlamaModel) -> (logits: [Float], reused: Int) {
        precondition(!prompt.isEmpty && cache.length == 0)
        clock += 1
        // At least the last token runs: its logits start the answer.
        let limit = (prompt.count - 1) / chunk * chunk
        var best: Entry?, reused = 0
        for e in entries where e.adapter === adapter {
            var n = 0
            let m = min(limit, e.tokens.count)
            while n < m && e.tokens[n] == prompt[n] { n += 1 }
            n = n / chunk * chunk
            if n > reused { (best, reused) = (e, n) }
        }
        if let best {
            cache.copyPrefix(of: best.cache, count: reused)
            best.used = clock
        }
        var logits: [Float] = []
        var p = reused
        while p < prompt.count {
            let end = min(prompt.count, p + chunk)
            logits = model.forward(Array(prompt[p..<end]), cache: cache, logits: .last,
                                   adapters: .perRow(Array(repeating: adapter, count: end - p)))
            p = end
        }
        remember(Array(prompt[0..<(prompt.count / chunk * chunk)]), from: cache, adapter: adapter, known: reused)
        return (logits, reused)
    }

    private func remember(_ tokens: [Int], from cache: KVCache, adapter: LoRAAdapter?, known: Int) {
        guard tokens.count > known else { return }
        // An entry this one extends is no longer needed.
        entries.removeAll { e in e.adapter === adapter && e.tokens.count <= tokens.count && Array(tokens[0..<e.tokens.count]) == e.tokens }
        let copy = KVCache(like: cache, capacity: tokens.count)
        copy.copyPrefix(of: cache, count: tokens.count)
        entries.append(Entry(tokens: tokens, adapter: adapter, cache: copy, used: clock))
        var bytes = byteCount
        while bytes > maxBytes, let oldest = entries.indices.min(by: { entries[$0].used < entries[$1].used }) {
            bytes -= entries[oldest].cache.byteCount
            entries.remove(at: oldest)
        }
    }
}
