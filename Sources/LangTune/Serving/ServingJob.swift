import Foundation

/// A submitted request as the engine tracks it: its resolved adapter, deadline and the stream it feeds.
final class ServingJob: @unchecked Sendable {
    let request: ServingRequest
    let adapter: LoRAAdapter?
    let maxTokens: Int
    let deadline: Date
    private let continuation: AsyncStream<ServingEvent>.Continuation
    private let lock = NSLock()
    private var isCancelled = false

    init(request: ServingRequest, adapter: LoRAAdapter?, maxTokens: Int, deadline: Date,
         continuation: AsyncStream<ServingEvent>.Continuation) {
        self.request = request
        self.adapter = adapter
        self.maxTokens = maxTokens
        self.deadline = deadline
        self.continuation = continuation
    }

    /// Set when the consumer goes away (a client that disconnected): the engine drops the job and its
    /// cache at the next step.
    var cancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return isCancelled
    }

    func cancel() {
        lock.lock()
        isCancelled = true
        lock.unlock()
    }

    func emit(_ text: String) {
        if !text.isEmpty { continuation.yield(.text(text)) }
    }

    func finish(_ reason: FinishReason, _ usage: ServingUsage) {
        continuation.yield(.finished(reason, usage))
        continuation.finish()
    }

    /// Ends the stream of a cancelled job (nobody reads it, or the reader asked to stop).
    func close() {
        continuation.finish()
    }

    func fail(_ error: ServingError) {
        continuation.yield(.failed(error))
        continuation.finish()
    }
}
