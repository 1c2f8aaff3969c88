import Foundation
import Hummingbird
import LangTune
import Logging
import NIOCore
import ServiceLifecycle

/// The HTTP server of `langtune serve`: OpenAI's endpoints over a `ServingEngine`.
public struct ServeApp: Sendable {
    public let engine: ServingEngine
    public let configuration: ServerConfiguration
    let metrics = ServerMetrics()

    public init(engine: ServingEngine, configuration: ServerConfiguration) {
        self.engine = engine
        self.configuration = configuration
    }

    /// Serves until SIGTERM or SIGINT; then takes no new connections, lets the requests in flight
    /// finish, and returns. `onListening` gets the bound port once the server accepts connections.
    public func run(logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: ServeRequestContext.self)
        let generation = GenerationRoutes(engine: engine, configuration: configuration, metrics: metrics)
        let admin = AdminRoutes(engine: engine, configuration: configuration, metrics: metrics,
                                started: Int(Date().timeIntervalSince1970))
        router.post("/v1/chat/completions") { try await generation.chat($0, $1) }
        router.post("/v1/completions") { try await generation.completion($0, $1) }
        router.get("/v1/models") { try await admin.models($0, $1) }
        router.get("/health") { try await admin.health($0, $1) }
        router.get("/metrics") { try await admin.metricsText($0, $1) }
        router.post("/v1/load_lora_adapter") { try await admin.load($0, $1) }
        router.post("/v1/unload_lora_adapter") { try await admin.unload($0, $1) }
        let known: Set<String> = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics",
                                  "/v1/load_lora_adapter", "/v1/unload_lora_adapter"]
        let responder = GuardedResponder(inner: router.buildResponder(), configuration: configuration, metrics: metrics,
                                         knownPaths: known)
        let head = TimeAmount.nanoseconds(Int64(configuration.headerTimeoutSeconds * 1e9))
        let keepAlive = TimeAmount.nanoseconds(Int64(configuration.idleTimeoutSeconds * 1e9))
        let app = Application(
            responder: responder,
            server: .http1(configuration: .init(
                additionalChannelHandlers: [RequestHeadDeadline(headTimeout: head, keepAliveTimeout: keepAlive)],
                idleTimeout: keepAlive)),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "langtune"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.info("listening", metadata: ["host": .string(configuration.host), "port": .stringConvertible(port)])
                await onListening(port)
            },
            logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        // Hummingbird waited for the requests in flight; the engine has nothing left to run.
        await engine.drain()
        logger.info("stopped")
    }
}
