import Foundation

/// One generation request as the serving engine takes it: token ids in, text out.
public struct ServingRequest: Sendable {
    /// The prompt, already rendered and tokenized.
    public var promptIds: [Int]
    /// The adapter to run with; nil is the base model.
    public var adapter: String?
    /// Most new tokens; nil runs until the context is full (or a stop).
    public var maxTokens: Int?
    public var sampling: SamplingOptions
    /// Generation ends when the text contains one of these; the text is cut before it.
    public var stopStrings: [String]
    /// Keep generating past the end-of-sequence token until `maxTokens` (benchmarks: every request the
    /// same length on every server; llama.cpp's and vLLM's `ignore_eos`).
    public var ignoreEOS: Bool
    /// Keeps the answer to a span of this text (extractive Q&A, as `generate --grounded`): tokens that
    /// would leave the text are masked out before sampling, and the request ends when none is left.
    public var grounding: GroundedSpan?

    public init(promptIds: [Int], adapter: String? = nil, maxTokens: Int? = nil, sampling: SamplingOptions = SamplingOptions(),
                stopStrings: [String] = [], ignoreEOS: Bool = false, grounding: GroundedSpan? = nil) {
        self.ignoreEOS = ignoreEOS
        self.grounding = grounding
        self.promptIds = promptIds
        self.adapter = adapter
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
    }
}

/// Token counts of a finished request (OpenAI's `usage`).
public struct ServingUsage: Sendable, Equatable {
    public var promptTokens: Int
    /// Every sampled token, the end-of-sequence token included.
    public var completionTokens: Int
}

/// What a request's stream delivers, in order: text pieces, then exactly one `finished` or `failed`.
public enum ServingEvent: Sendable {
    /// Text that is final (no stop string can still claim it).
    case text(String)
    case finished(FinishReason, ServingUsage)
    case failed(ServingError)
}

/// Why the engine refused or ended a request. Each case says what the client can do about it.
public enum ServingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Every decoding row and queue place is taken; try again after `retryAfterSeconds`.
    case queueFull(retryAfterSeconds: Int)
    case unknownModel(String)
    case emptyPrompt
    /// Prompt plus `max_tokens` do not fit the context.
    case contextExceeded(promptTokens: Int, maxTokens: Int, contextLength: Int)
    case invalidMaxTokens(Int)
    /// The request ran longer than the server's per-request limit.
    case timedOut(seconds: Double)
    /// The server is draining (SIGTERM) and takes no new requests.
    case shuttingDown
    case adapterExists(String)
    case adapterNotLoaded(String)
    /// An adapter folder that cannot be loaded for this model.
    case adapterInvalid(String)

    public var description: String {
        switch self {
        case .queueFull(let s): return "the server is at capacity (all decoding slots and queue places taken); retry in \(s) s"
        case .unknownModel(let m): return "the model `\(m)` does not exist; GET /v1/models lists the base and every adapter"
        case .emptyPrompt: return "the prompt has no tokens"
        case .contextExceeded(let p, let m, let c):
            return "this model's context is \(c) tokens, but the request needs \(p + m) (\(p) in the prompt, \(m) for max_tokens); shorten the prompt or lower max_tokens"
        case .invalidMaxTokens(let n): return "max_tokens must be at least 1 (got \(n))"
        case .timedOut(let s): return String(format: "the request did not finish within the server's %.0f s limit", s)
        case .shuttingDown: return "the server is shutting down and takes no new requests"
        case .adapterExists(let n): return "an adapter named `\(n)` is already loaded; unload it first"
        case .adapterNotLoaded(let n): return "no adapter named `\(n)` is loaded"
        case .adapterInvalid(let why): return "the adapter cannot be loaded: \(why)"
        }
    }
}

/// How much the engine takes on at once, and for how long.
public struct ServingLimits: Sendable {
    /// Requests decoded together (rows of one batch).
    public var maxConcurrent: Int = 16
    /// Requests waiting for a row; one more is refused with `queueFull`.
    public var maxQueue: Int = 64
    /// Prompt plus generated tokens of one request.
    public var contextLength: Int = 2048
    /// Seconds from arrival to the last token.
    public var timeoutSeconds: Double = 300

    public init(maxConcurrent: Int = 16, maxQueue: Int = 64, contextLength: Int = 2048, timeoutSeconds: Double = 300) {
        self.maxConcurrent = maxConcurrent
        self.maxQueue = maxQueue
        self.contextLength = contextLength
        self.timeoutSeconds = timeoutSeconds
    }
}
