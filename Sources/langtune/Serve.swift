import ArgumentParser
import Foundation
import LangTune
import LangTuneServer
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model and its LoRA adapters behind an OpenAI-compatible HTTP API.",
        discussion: """
            Endpoints: POST /v1/chat/completions (the model's own chat template; stream: true for server-sent events), POST /v1/completions, GET /v1/models (the base and every adapter), GET /health, GET /metrics (Prometheus), and POST /v1/load_lora_adapter and /v1/unload_lora_adapter ({"lora_name", "lora_path"}, as vLLM). A request's `model` names the base (--served-model-name, or `base`) or an adapter.

            Requests decode together (continuous batching): each has its own KV cache, joins the running batch between steps and leaves when done; requests for different adapters share a step, the base products computed once for all of them. Each answer is the one the request gets alone.

            With --api-key (or LANGTUNE_API_KEY), every endpoint but /health needs `Authorization: Bearer KEY`. SIGTERM or SIGINT stops taking connections, lets the requests in flight finish, then exits.

            Example:
              langtune serve --model default --adapter tr=runs/tr/adapter --port 8080
            """)

    @Option(help: "GGUF file, safetensors folder, or a built-in name: `default` (SmolLM2-135M-Instruct), `gemma3-270m`.")
    var model: String = "default"
    @Option(name: .customLong("adapter"), help: ArgumentHelp("An adapter to offer, NAME=DIR (PEFT folder); repeatable.", valueName: "NAME=DIR"))
    var adapters: [String] = []
    @Option(help: "Address to bind (loopback by default; 0.0.0.0 for every interface).")
    var host: String = "127.0.0.1"
    @Option(help: "TCP port (0 picks a free one and prints it).")
    var port: Int = 8080
    @Option(name: .customLong("api-key"), help: "Require `Authorization: Bearer KEY` (default: $LANGTUNE_API_KEY if set).")
    var apiKey: String?
    @Option(name: .customLong("max-concurrent"), help: "Requests decoded together.")
    var maxConcurrent: Int = 16
    @Option(name: .customLong("max-queue"), help: "Requests waiting beyond those; more get 429 with Retry-After.")
    var maxQueue: Int = 64
    @Option(help: "Context per request: prompt plus generated tokens.")
    var ctx: Int = 2048
    @Option(name: .customLong("max-prompt-tokens"), help: "Longest prompt accepted (default: 3/4 of --ctx).")
    var maxPromptTokens: Int?
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted (413 above).")
    var maxBodyBytes: Int = 1 << 20
    @Option(help: "Seconds a request may take from arrival to its last token.")
    var timeout: Double = 300
    @Option(name: .customLong("header-timeout"), help: "Seconds a new connection has to send its request head, and a request its body (408 after).")
    var headerTimeout: Double = 10
    @Option(name: .customLong("served-model-name"), help: "The base model's name in /v1/models (default: the model file's name).")
    var servedModelName: String?
    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?
    @Option(help: ArgumentHelp(
        "Precision: f32 (float32 everywhere, the default: greedy answers equal `generate`'s), or bf16 as llama.cpp's server decodes: int8-quantized inputs for the quantized weights' products and a bfloat16 KV cache, prompts run row by row in chunks of 8 tokens, and the keys and values of prompt prefixes (a shared system prompt) kept for later requests. Each answer is still the one the request gets alone, but may differ in a rare near-tie from `generate --dtype bf16`, which runs a prompt as one matrix product.",
        valueName: "f32|bf16"))
    var dtype: String = "f32"
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535") }
        if maxConcurrent < 1 { throw ValidationError("--max-concurrent must be at least 1") }
        if maxQueue < 0 { throw ValidationError("--max-queue must be >= 0") }
        if ctx < 2 { throw ValidationError("--ctx must be at least 2") }
        if let m = maxPromptTokens, m < 1 || m >= ctx { throw ValidationError("--max-prompt-tokens must be in 1..<--ctx") }
        if maxBodyBytes < 1024 { throw ValidationError("--max-body-bytes must be at least 1024") }
        if !(timeout > 0) || !(headerTimeout > 0) { throw ValidationError("--timeout and --header-timeout must be > 0") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level \(logLevel)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if dtype != "f32" && dtype != "bf16" { throw ValidationError("--dtype must be f32 or bf16") }
        for a in adapters where parseAdapter(a) == nil { throw ValidationError("--adapter takes NAME=DIR (got \(a))") }
    }

    private func parseAdapter(_ s: String) -> (name: String, path: String)? {
        guard let eq = s.firstIndex(of: "="), eq != s.startIndex, s.index(after: eq) != s.endIndex else { return nil }
        return (String(s[..<eq]), String(s[s.index(after: eq)...]))
    }

    /// Synchronous like every other command: an async root command would run them all inside Swift
    /// concurrency's main actor, and the MPI watchdog of `train` stopped ending hung jobs under it.
    func run() throws {
        let done = DispatchSemaphore(value: 0)
        let failure = ServeFailure()
        Task.detached {
            do { try await serve() } catch { failure.set(error) }
            done.signal()
        }
        done.wait()
        if let error = failure.error { throw error }
    }

    private func serve() async throws {
        pinMallocThreshold()  // freed KV caches go back to the system: RSS returns near its start after load
        var logger = Logger(label: "langtune.serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        if let t = threads { setenv("OMP_NUM_THREADS", String(t), 1) }
        let path = try LangTuneHome.resolve(model)
        let lm = try LanguageModel(path, backend: CPUBackend(threads: Threads(threads), bf16: dtype == "bf16"))
        let registry = AdapterRegistry(model: lm.files.config)
        for a in adapters {
            let (name, dir) = parseAdapter(a)!
            do { try registry.load(name: name, path: dir) } catch { throw ValidationError("--adapter \(a): \(error)") }
            logger.info("adapter loaded", metadata: ["name": .string(name), "path": .string(dir)])
        }
        let limits = ServingLimits(maxConcurrent: maxConcurrent, maxQueue: maxQueue, contextLength: ctx, timeoutSeconds: timeout)
        let engine = ServingEngine(model: lm, adapters: registry, limits: limits)
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["LANGTUNE_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        config.maxBodyBytes = maxBodyBytes
        config.maxPromptTokens = maxPromptTokens ?? max(ctx * 3 / 4, 1)
        config.headerTimeoutSeconds = headerTimeout
        config.baseModelName = servedModelName ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let shownHost = host.contains(":") ? "[\(host)]" : host
        try await ServeApp(engine: engine, configuration: config).run(logger: logger) { bound in
            // One line on stdout for scripts and tests that start the server on port 0.
            FileHandle.standardOutput.write(Data("langtune serve: listening on http://\(shownHost):\(bound)\n".utf8))
        }
    }
}

/// The error the server task ended with, handed back to the waiting command.
private final class ServeFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Error)?
    func set(_ e: any Error) { lock.lock(); stored = e; lock.unlock() }
    var error: (any Error)? { lock.lock(); defer { lock.unlock() }; return stored }
}
