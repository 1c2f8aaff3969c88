import Foundation
import Hummingbird
import LangTune

/// `GET /v1/models`, `GET /health`, `GET /metrics`, and loading and unloading adapters at run time
/// (`POST /v1/load_lora_adapter`, `/v1/unload_lora_adapter`, vLLM's names and bodies).
struct AdminRoutes: Sendable {
    let engine: ServingEngine
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let started: Int

    func models(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let base = configuration.baseModelName
        var data = [ModelList.Entry(id: base, created: started, owned_by: "langtune", parent: nil)]
        data += engine.adapters.names.map { ModelList.Entry(id: $0, created: started, owned_by: "langtune", parent: base) }
        return jsonResponse(ModelList(data: data))
    }

    func health(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        struct Health: Encodable { let status: String; let queued: Int; let running: Int }
        let s = engine.stats
        return jsonResponse(Health(status: "ok", queued: s.queued, running: s.running))
    }

    func metricsText(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let s = engine.stats
        metrics.queued.set(Double(s.queued))
        metrics.running.set(Double(s.running))
        metrics.promptTokensReused.set(Double(s.counters.promptTokensReused))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.text())))
    }

    func load(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let body = try await decodeBody(LoadAdapterRequest.self, request, configuration)
        guard body.lora_name != configuration.baseModelName, body.lora_name != "base" else {
            throw APIError.invalid("`\(body.lora_name)` names the base model", param: "lora_name")
        }
        try engine.adapters.load(name: body.lora_name, path: body.lora_path)
        context.logger.info("adapter loaded", metadata: ["name": .string(body.lora_name), "path": .string(body.lora_path)])
        return jsonResponse(["status": "loaded", "lora_name": body.lora_name])
    }

    func unload(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let body = try await decodeBody(UnloadAdapterRequest.self, request, configuration)
        try engine.adapters.unload(name: body.lora_name)
        context.logger.info("adapter unloaded", metadata: ["name": .string(body.lora_name)])
        return jsonResponse(["status": "unloaded", "lora_name": body.lora_name])
    }
}
