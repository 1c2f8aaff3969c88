import Foundation

/// Continuous batching over one model and many LoRA adapters. Requests wait in a bounded queue, join
/// the running batch between decoding steps (their prompt runs alone, with their adapter; under
/// `--dtype bf16` from the longest cached prefix, see `PrefixCache`), then
/// decode together, each row with its own KV cache and adapter, and leave as soon as they finish, are
/// cancelled or time out. One thread runs the model; everything else only queues work and reads events.
public final class ServingEngine: @unchecked Sendable {
    public let languageModel: LanguageModel
    public let adapters: AdapterRegistry
    public let limits: ServingLimits

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var waiting: [ServingJob] = []
    private var running = 0
    private var accepting = true
    private var stopping = false
    private var loopDone = false
    private var counters = ServingCounters()
    /// Prompt prefixes already processed (only where prompts run row by row: `--dtype bf16`).
    private let prefixCache: PrefixCache?

    public init(model: LanguageModel, adapters: AdapterRegistry? = nil, limits: ServingLimits = ServingLimits()) {
        languageModel = model
        self.adapters = adapters ?? AdapterRegistry(model: model.files.config)
        self.limits = limits
        prefixCache = model.model.backend.usesReducedPrecisionDecoding ? PrefixCache() : nil
        let thread = Thread { [self] in decodeLoop() }
        thread.name = "langtune-serve-decode"
        thread.start()
    }

    /// Queues a request and returns its events. Refuses at once what cannot run (unknown adapter, a
    /// prompt that does not fit, a full queue, a draining server). `cancel()` on the handle, or dropping
    /// its stream unfinished (a client that disconnected), ends the request and frees its cache.
    public func submit(_ request: ServingRequest) throws(ServingError) -> ServingHandle {
        var adapter: LoRAAdapter?
        if let name = request.adapter {
            guard let a = adapters.adapter(named: name) else { throw .unknownModel(name) }
            adapter = a
        }
        let prompt = request.promptIds.count
        guard prompt > 0 else { throw .emptyPrompt }
        if let m = request.maxTokens, m < 1 { throw .invalidMaxTokens(m) }
        let maxTokens = request.maxTokens ?? max(limits.contextLength - prompt, 1)
        guard prompt + maxTokens <= limits.contextLength else {
            throw .contextExceeded(promptTokens: prompt, maxTokens: maxTokens, contextLength: limits.contextLength)
        }
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { throw .shuttingDown }
        guard waiting.count + running < limits.maxConcurrent + limits.maxQueue else {
            counters.rejected += 1
            throw .queueFull(retryAfterSeconds: 1)
        }
        let (stream, continuation) = AsyncStream<ServingEvent>.makeStream(bufferingPolicy: .unbounded)
        let job = ServingJob(request: request, adapter: adapter, maxTokens: maxTokens,
                             deadline: Date().addingTimeInterval(limits.timeoutSeconds), continuation: continuation)
        continuation.onTermination = { [weak self, weak job] reason in
            guard case .cancelled = reason, let job else { return }
            job.cancel()
            self?.wake()
        }
        waiting.append(job)
        counters.submitted += 1
        condition.signal()
        return ServingHandle(events: stream, job: job, engine: self)
    }

    /// Requests queued and decoding now, and totals since start.
    public var stats: ServingStats {
        condition.lock()
        defer { condition.unlock() }
        return ServingStats(queued: waiting.count, running: running, counters: counters)
    }

    /// Stops taking requests, lets every queued and running one finish, then stops the decoding thread.
    public func drain() async {
        stopAccepting()
        while !decodingStopped { try? await Task.sleep(nanoseconds: 20_000_000) }
    }

    private func stopAccepting() {
        condition.lock()
        accepting = false
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private var decodingStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return loopDone
    }

    fileprivate func wake() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    private func decodeLoop() {
        var slots: [DecodeSlot] = []
        let lm = languageModel
        let V = lm.model.vocabSize
        let stopIds = lm.stopTokenIds
        let tokenBytes: (Int) -> [UInt8] = { lm.tokenizer.tokenBytes($0) }
        while true {
            condition.lock()
            if waiting.isEmpty && slots.isEmpty {
                // Going idle: the finished requests' KV caches go back to the system, not just to the heap.
                condition.unlock()
                releaseFreeMemory()
                condition.lock()
            }
            while waiting.isEmpty && slots.isEmpty && !stopping { condition.wait() }
            if stopping && waiting.isEmpty && slots.isEmpty {
                loopDone = true
                condition.unlock()
                return
            }
            let now = Date()
            var admitted: [ServingJob] = []
            waiting.removeAll { job in
                if job.cancelled { job.close(); counters.cancelled += 1; return true }
                if job.deadline < now { job.fail(.timedOut(seconds: limits.timeoutSeconds)); counters.timedOut += 1; return true }
                return false
            }
            while slots.count + admitted.count < limits.maxConcurrent, !waiting.isEmpty { admitted.append(waiting.removeFirst()) }
            running = slots.count + admitted.count
            condition.unlock()

            // Joining: each new request's prompt with its own adapter, then its first token.
            for job in admitted {
                if job.cancelled { job.close(); count(\.cancelled); continue }
                let slot = DecodeSlot(job: job, config: lm.model.config, stopIds: stopIds, tokenizer: lm.tokenizer)
                let logits: [Float]
                if let prefixCache {
                    let run = prefixCache.prefill(job.request.promptIds, cache: slot.cache, adapter: job.adapter, model: lm.model)
                    logits = run.logits
                    add(run.reused, to: \.promptTokensReused)
                } else {
                    logits = lm.model.forward(job.request.promptIds, cache: slot.cache, logits: .last, adapter: job.adapter)
                }
                if slot.accept(logits: logits, tokenBytes: tokenBytes) == nil { slots.append(slot) } else { count(\.completed) }
            }
            // Leaving: cancelled (client gone) and timed-out rows drop out before the step.
            slots.removeAll { slot in
                if slot.job.cancelled { slot.job.close(); count(\.cancelled); return true }
                if slot.job.deadline < Date() { slot.job.fail(.timedOut(seconds: limits.timeoutSeconds)); count(\.timedOut); return true }
                return false
            }
            if !slots.isEmpty {
                // One step for every row: base products shared, each row's LoRA product with its own adapter.
                let logits = lm.model.decodeStep(slots.map(\.lastToken), caches: slots.map(\.cache), adapters: slots.map(\.adapter))
                var still: [DecodeSlot] = []
                for (b, slot) in slots.enumerated() {
                    let row = Array(logits[(b * V)..<((b + 1) * V)])
                    if slot.accept(logits: row, tokenBytes: tokenBytes) == nil { still.append(slot) } else { count(\.completed) }
                }
                slots = still
                count(\.decodeSteps)
            }
            condition.lock()
            running = slots.count
            condition.unlock()
        }
    }

    private func count(_ key: WritableKeyPath<ServingCounters, Int>) { add(1, to: key) }

    private func add(_ n: Int, to key: WritableKeyPath<ServingCounters, Int>) {
        condition.lock()
        counters[keyPath: key] += n
        condition.unlock()
    }
}

/// A submitted request: its events, and a way to end it early.
public struct ServingHandle: Sendable {
    public let events: AsyncStream<ServingEvent>
    fileprivate let job: ServingJob
    fileprivate let engine: ServingEngine

    /// Ends the request at the next decoding step and frees its cache; its stream ends without a
    /// `finished` event. Harmless after the request finished.
    public func cancel() {
        job.cancel()
        engine.wake()
    }
}

/// Totals since the engine started.
public struct ServingCounters: Sendable, Equatable {
    public var submitted = 0
    public var completed = 0
    public var cancelled = 0
    public var timedOut = 0
    /// Refused with `queueFull`.
    public var rejected = 0
    public var decodeSteps = 0
    /// Prompt tokens whose keys and values came from the prefix cache instead of the model.
    public var promptTokensReused = 0
}

/// A snapshot of the engine's load.
public struct ServingStats: Sendable {
    public var queued: Int
    public var running: Int
    public var counters: ServingCounters
}
