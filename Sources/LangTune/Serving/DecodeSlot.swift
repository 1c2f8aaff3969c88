import Foundation

/// One row of the running batch: a request's KV cache, sampler and text, from its prompt to its end.
/// Only the engine's decoding thread touches it; dropping it frees the cache.
final class DecodeSlot {
    let job: ServingJob
    let cache: KVCache
    private var sampler: Sampler
    private var context: [Int]
    private var assembler: TextAssembler
    private let stopIds: Set<Int>
    /// The model's end-of-turn tokens, even under `ignoreEOS`: a grounded answer may end with one.
    private let modelStopIds: Set<Int>
    private let tokenizer: Tokenizer
    private var span = GroundedSpan.State()
    private(set) var generated = 0
    /// The token the next decoding step feeds.
    private(set) var lastToken = 0

    init(job: ServingJob, config: LlamaConfig, stopIds: Set<Int>, tokenizer: Tokenizer) {
        self.job = job
        // Room for the prompt and a first stretch of answer; the cache doubles if the answer runs on,
        // so a request asking for the whole context does not reserve it up front.
        cache = KVCache(config: config, capacity: job.request.promptIds.count + min(job.maxTokens, 64))
        sampler = Sampler(job.request.sampling)
        context = job.request.promptIds
        assembler = TextAssembler(stopStrings: job.request.stopStrings, dropLeadingSpace: tokenizer.core.stripLeadingSpace)
        self.stopIds = job.request.ignoreEOS ? [] : stopIds
        modelStopIds = stopIds
        self.tokenizer = tokenizer
    }

    var adapter: LoRAAdapter? { job.adapter }

    /// Takes the next token from this row's logits, sends the text that became final, and returns the
    /// reason when the request is done (then it has been told so).
    func accept(logits input: [Float], tokenBytes: (Int) -> [UInt8]) -> FinishReason? {
        let id: Int
        if let g = job.request.grounding {
            // The same masking as `generate --grounded`, so a grounded request answers as `generate` does.
            var logits = input
            g.mask(&logits, state: span, tokenizer: tokenizer, stops: modelStopIds)
            // Nothing allowed: the span has reached the end of the text.
            guard logits.contains(where: { $0 > -.infinity }) else { return end(.eos) }
            id = sampler.next(logits: logits, context: context)
            span = g.allows(id, state: span, tokenizer: tokenizer, stops: modelStopIds).next
        } else {
            id = sampler.next(logits: input, context: context)
        }
        generated += 1
        context.append(id)
        lastToken = id
        var finish: FinishReason?
        if stopIds.contains(id) {
            finish = .eos
        } else {
            let (piece, stopped) = assembler.append(tokenBytes(id))
            job.emit(piece)
            if stopped { finish = .stop } else if generated >= job.maxTokens { finish = .length }
        }
        guard let finish else { return nil }
        return end(finish)
    }

    private func end(_ finish: FinishReason) -> FinishReason {
        if finish != .stop { job.emit(assembler.finish()) }
        job.finish(finish, ServingUsage(promptTokens: job.request.promptIds.count, completionTokens: generated))
        return finish
    }
}
