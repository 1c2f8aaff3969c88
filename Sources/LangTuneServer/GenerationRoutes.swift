import Foundation
import Hummingbird
import LangTune
import Logging
import NIOCore

/// `POST /v1/chat/completions` and `POST /v1/completions`: decode and check the request, render and
/// tokenize the prompt, hand it to the engine, and answer as one JSON body or as server-sent events.
struct GenerationRoutes: Sendable {
    let engine: ServingEngine
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    func chat(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let body = try await decodeBody(ChatCompletionRequest.self, request, configuration)
        guard !body.messages.isEmpty else { throw APIError.invalid("messages must not be empty", param: "messages") }
        let allowed: Set<String> = ["system", "user", "assistant", "developer"]
        for m in body.messages where !allowed.contains(m.role) {
            throw APIError.invalid("unsupported message role `\(m.role)` (system, developer, user, assistant)", param: "messages")
        }
        // OpenAI's `developer` role is the newer name of `system`; chat templates know only the latter.
        let messages = body.messages.map { ChatMessage(role: $0.role == "developer" ? "system" : $0.role, content: $0.content.text) }
        try checkTextSize(messages.reduce(0) { $0 + $1.content.utf8.count })
        let lm = engine.languageModel
        let rendered: String
        do { rendered = try lm.render(messages, addGenerationPrompt: true) } catch {
            throw APIError.invalid("the model's chat template cannot render these messages: \(error)", param: "messages")
        }
        let ids = lm.tokenizer.encode(rendered, addSpecialTokens: false)
        let id = "chatcmpl-" + UUID().uuidString.lowercased()
        let model = body.model
        let created = Int(Date().timeIntervalSince1970)
        return try await generate(ids, model: model, fields: body.sampling, context: context, format: Format(
            chunk: { text, finish in
                var delta = ChatCompletionChunk.Delta()
                if let text { delta.content = text } else if finish == nil { delta.role = "assistant"; delta.content = "" }
                return ServerEvents.data(ChatCompletionChunk(id: id, created: created, model: model, choices: [
                    .init(index: 0, delta: delta, finish_reason: finish.map(finishReasonName))]))
            },
            usageChunk: { usage in
                ServerEvents.data(ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: UsageBody(usage)))
            },
            whole: { text, finish, usage in
                jsonResponse(ChatCompletionBody(id: id, created: created, model: model, choices: [
                    .init(index: 0, message: .init(role: "assistant", content: text), finish_reason: finishReasonName(finish))],
                    usage: UsageBody(usage)))
            }))
    }

    func completion(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let body = try await decodeBody(CompletionRequest.self, request, configuration)
        let prompts = body.prompt.strings
        guard prompts.count == 1 else { throw APIError.invalid("exactly one prompt per request is supported", param: "prompt") }
        try checkTextSize(prompts[0].utf8.count)
        let ids = engine.languageModel.tokenizer.encode(prompts[0], addSpecialTokens: true)
        let id = "cmpl-" + UUID().uuidString.lowercased()
        let model = body.model
        let created = Int(Date().timeIntervalSince1970)
        return try await generate(ids, model: model, fields: body.sampling, context: context, format: Format(
            chunk: { text, finish in
                guard text != nil || finish != nil else { return nil }
                return ServerEvents.data(CompletionBody(id: id, created: created, model: model, choices: [
                    .init(index: 0, text: text ?? "", finish_reason: finish.map(finishReasonName))]))
            },
            usageChunk: { usage in
                ServerEvents.data(CompletionBody(id: id, created: created, model: model, choices: [], usage: UsageBody(usage)))
            },
            whole: { text, finish, usage in
                jsonResponse(CompletionBody(id: id, created: created, model: model, choices: [
                    .init(index: 0, text: text, finish_reason: finishReasonName(finish))], usage: UsageBody(usage)))
            }))
    }

    /// How one endpoint writes its answer. `chunk(nil, nil)` opens a stream (nil: nothing to send),
    /// `chunk(text, nil)` carries text, `chunk(nil, reason)` closes it.
    struct Format: Sendable {
        let chunk: @Sendable (String?, FinishReason?) -> ByteBuffer?
        let usageChunk: @Sendable (ServingUsage) -> ByteBuffer
        let whole: @Sendable (String, FinishReason, ServingUsage) -> Response
    }

    /// A cheap bound before tokenizing: no prompt that could fit the token limit is longer than this.
    private func checkTextSize(_ bytes: Int, param: String = "prompt") throws {
        guard bytes <= configuration.maxPromptTokens * 64 else {
            throw APIError.invalid("the \(param) is longer than this server accepts (\(configuration.maxPromptTokens) tokens)",
                                   param: param)
        }
    }

    private func generate(_ ids: [Int], model: String, fields: SamplingFields, context: ServeRequestContext,
                          format: Format) async throws -> Response {
        guard ids.count <= configuration.maxPromptTokens else {
            throw APIError(status: .badRequest,
                           message: "the prompt has \(ids.count) tokens; this server accepts at most \(configuration.maxPromptTokens)",
                           type: "invalid_request_error", code: "context_length_exceeded", param: "messages")
        }
        let (maxTokens, sampling, stops) = try fields.validated()
        let adapter = try resolveModel(model)
        if let g = fields.grounded_context { try checkTextSize(g.utf8.count, param: "grounded_context") }
        let start = ContinuousClock.now
        let handle = try engine.submit(ServingRequest(promptIds: ids, adapter: adapter, maxTokens: maxTokens, sampling: sampling,
                                                      stopStrings: stops, ignoreEOS: fields.ignore_eos == true,
                                                      grounding: fields.grounded_context.map(GroundedSpan.init)))
        // A client that goes away stops its generation and frees its cache at the next step.
        context.channel.closeFuture.whenComplete { _ in handle.cancel() }
        let metrics = self.metrics
        let firstText: @Sendable () -> Void = {
            let d = start.duration(to: .now)
            metrics.timeToFirstToken(seconds: Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        if fields.stream == true {
            let includeUsage = fields.stream_options?.include_usage == true
            return Response(status: .ok, headers: ServerEvents.headers, body: ResponseBody { writer in
                do {
                    if let open = format.chunk(nil, nil) { try await writer.write(open) }
                    var sawText = false
                    for await event in handle.events {
                        switch event {
                        case .text(let t):
                            if !sawText { sawText = true; firstText() }
                            if let b = format.chunk(t, nil) { try await writer.write(b) }
                        case .finished(let reason, let usage):
                            if !sawText { firstText() }
                            metrics.generation(promptTokens: usage.promptTokens, generatedTokens: usage.completionTokens)
                            if let b = format.chunk(nil, reason) { try await writer.write(b) }
                            if includeUsage { try await writer.write(format.usageChunk(usage)) }
                        case .failed(let e):
                            // Headers are gone: the error travels as an event, as OpenAI's streams do.
                            let a = APIError(e)
                            try await writer.write(ServerEvents.data(ErrorBody(error: .init(message: a.message, type: a.type,
                                                                                            param: nil, code: a.code))))
                        }
                    }
                    try await writer.write(ServerEvents.done)
                    try await writer.finish(nil)
                } catch {
                    handle.cancel()
                    throw error
                }
            })
        }
        var text = ""
        var sawText = false
        for await event in handle.events {
            switch event {
            case .text(let t):
                if !sawText { sawText = true; firstText() }
                text += t
            case .finished(let reason, let usage):
                if !sawText { firstText() }
                metrics.generation(promptTokens: usage.promptTokens, generatedTokens: usage.completionTokens)
                return format.whole(text, reason, usage)
            case .failed(let e):
                throw APIError(e)
            }
        }
        // The stream ended without an outcome: the request was cancelled (its client left).
        throw APIError(status: .badRequest, message: "the request was cancelled", type: "invalid_request_error", code: "cancelled")
    }

    /// The adapter a request's `model` names: nil for the base (its name, `base`, or empty).
    private func resolveModel(_ name: String) throws -> String? {
        if name.isEmpty || name == configuration.baseModelName || name == "base" { return nil }
        guard engine.adapters.adapter(named: name) != nil else { throw APIError(ServingError.unknownModel(name)) }
        return name
    }
}

/// Reads and decodes a JSON body: at most `maxBodyBytes` (413 above), within the head deadline (408 for
/// a body that trickles in), and valid UTF-8 JSON of the expected shape (400 otherwise).
func decodeBody<T: Decodable & Sendable>(_ type: T.Type, _ request: Request, _ configuration: ServerConfiguration) async throws -> T {
    let limit = configuration.maxBodyBytes
    let body = request.body
    let buffer: ByteBuffer = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
        group.addTask {
            do { return try await body.collect(upTo: limit) } catch is NIOTooManyBytesError { throw APIError.tooLarge(limit) }
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(configuration.headerTimeoutSeconds * 1e9))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let first else { throw APIError.requestTimeout }
        return first
    }
    let data = Data(buffer.readableBytesView)
    guard !data.isEmpty else { throw APIError.invalid("the request body is empty; send JSON") }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let e as APIError {
        throw e
    } catch let e as DecodingError {
        throw APIError.from(e)
    } catch {
        throw APIError.invalid("the request body is not valid JSON")
    }
}

/// A JSON body with status 200.
func jsonResponse<T: Encodable>(_ value: T) -> Response {
    let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
    return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
