import Foundation
import Prometheus

/// What `/metrics` reports (Prometheus text format): requests by endpoint and status, generated and
/// prompt tokens, request latency and time to first token, queue depth and running requests.
/// Its own registry, not a process-wide one: tests run several servers in one process.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let promptTokens: Counter
    private let generatedTokens: Counter
    private let latency: DurationHistogram
    private let firstToken: DurationHistogram
    let queued: Gauge
    let running: Gauge
    /// A gauge set from the engine's counter when scraped (the engine counts; this only reports).
    let promptTokensReused: Gauge

    init() {
        promptTokens = registry.makeCounter(name: "langtune_prompt_tokens_total", help: "Prompt tokens of finished requests")
        generatedTokens = registry.makeCounter(name: "langtune_generated_tokens_total", help: "Tokens generated")
        let buckets: [Duration] = [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                   .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60)]
        latency = registry.makeDurationHistogram(name: "langtune_request_duration_seconds", buckets: buckets,
                                                 help: "Time from a request's arrival to its last byte")
        firstToken = registry.makeDurationHistogram(name: "langtune_time_to_first_token_seconds", buckets: buckets,
                                                    help: "Time from a generation request's arrival to its first text")
        queued = registry.makeGauge(name: "langtune_queue_depth", help: "Requests waiting for a decoding row")
        running = registry.makeGauge(name: "langtune_running_requests", help: "Requests decoding now")
        promptTokensReused = registry.makeGauge(name: "langtune_prompt_tokens_reused",
                                                help: "Prompt tokens taken from the prompt-prefix cache since start (--dtype bf16)")
    }

    /// Counts one answered request.
    func request(path: String, status: Int, seconds: Double) {
        registry.makeCounter(name: "langtune_requests_total", labels: [("path", path), ("status", String(status))],
                             help: "HTTP requests answered").increment()
        latency.record(.nanoseconds(Int64(seconds * 1e9)))
    }

    func generation(promptTokens p: Int, generatedTokens g: Int) {
        promptTokens.increment(by: Int64(p))
        generatedTokens.increment(by: Int64(g))
    }

    func timeToFirstToken(seconds: Double) {
        firstToken.record(.nanoseconds(Int64(seconds * 1e9)))
    }

    func text() -> String { registry.emitToString() }
}
