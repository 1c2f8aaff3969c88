import Foundation
import LangTune

/// A string or a list of strings (OpenAI's `stop`, and a completion's `prompt`).
enum StringOrList: Decodable, Sendable {
    case one(String)
    case many([String])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .one(s); return }
        self = .many(try c.decode([String].self))
    }

    var strings: [String] {
        switch self {
        case .one(let s): return [s]
        case .many(let l): return l
        }
    }
}

/// A chat message's content: a string, or OpenAI's list of parts of which only text parts are taken.
struct MessageContent: Decodable, Sendable {
    let text: String

    struct Part: Decodable { let type: String; let text: String? }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { text = ""; return }
        if let s = try? c.decode(String.self) { text = s; return }
        let parts = try c.decode([Part].self)
        guard parts.allSatisfy({ $0.type == "text" && $0.text != nil }) else {
            throw APIError.invalid("only text content parts are supported", param: "messages")
        }
        text = parts.compactMap(\.text).joined()
    }
}

struct ChatMessageBody: Decodable, Sendable {
    let role: String
    let content: MessageContent
}

/// The sampling fields chat and completions requests share, as OpenAI names them.
struct SamplingFields: Decodable, Sendable {
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var temperature: Double?
    var top_p: Double?
    var seed: Int?
    var n: Int?
    var stop: StringOrList?
    var stream: Bool?
    var stream_options: StreamOptions?
    /// llama.cpp's and vLLM's extension: generate exactly `max_tokens` (benchmarks).
    var ignore_eos: Bool?
    /// LangTune's extension: the answer must be a span of this text (extractive Q&A, as
    /// `langtune generate --grounded`); the prompt should ask about the same text.
    var grounded_context: String?

    struct StreamOptions: Decodable, Sendable { var include_usage: Bool? }

    /// Checks every field against what OpenAI accepts and turns them into the engine's terms.
    func validated() throws -> (maxTokens: Int?, sampling: SamplingOptions, stop: [String]) {
        let maxTokens = max_completion_tokens ?? max_tokens
        if let m = maxTokens, m < 1 { throw APIError.invalid("max_tokens must be at least 1 (got \(m))", param: "max_tokens") }
        let t = temperature ?? 1
        guard t.isFinite, t >= 0, t <= 2 else { throw APIError.invalid("temperature must be between 0 and 2", param: "temperature") }
        let p = top_p ?? 1
        guard p.isFinite, p > 0, p <= 1 else { throw APIError.invalid("top_p must be in (0, 1]", param: "top_p") }
        if let n, n != 1 { throw APIError.invalid("only n = 1 is supported (got \(n))", param: "n") }
        let stops = stop?.strings ?? []
        guard stops.count <= 4 else { throw APIError.invalid("at most 4 stop sequences", param: "stop") }
        // No seed: a fresh one per request, as OpenAI (sampling differs from call to call).
        let seed = seed.map { UInt64(bitPattern: Int64($0)) } ?? UInt64.random(in: 0...UInt64.max)
        if let g = grounded_context, g.allSatisfy(\.isWhitespace) {
            throw APIError.invalid("grounded_context must hold the text answers are taken from", param: "grounded_context")
        }
        return (maxTokens, SamplingOptions(temperature: t, topP: p, seed: seed), stops.filter { !$0.isEmpty })
    }
}

/// `POST /v1/chat/completions`.
struct ChatCompletionRequest: Decodable, Sendable {
    let model: String
    let messages: [ChatMessageBody]
    let sampling: SamplingFields

    enum CodingKeys: String, CodingKey { case model, messages }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        messages = try c.decode([ChatMessageBody].self, forKey: .messages)
        sampling = try SamplingFields(from: decoder)
    }
}

/// `POST /v1/completions`.
struct CompletionRequest: Decodable, Sendable {
    let model: String
    let prompt: StringOrList
    let sampling: SamplingFields

    enum CodingKeys: String, CodingKey { case model, prompt }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        prompt = try c.decode(StringOrList.self, forKey: .prompt)
        sampling = try SamplingFields(from: decoder)
    }
}

/// `POST /v1/load_lora_adapter` (vLLM's names).
struct LoadAdapterRequest: Decodable, Sendable {
    let lora_name: String
    let lora_path: String
}

/// `POST /v1/unload_lora_adapter`.
struct UnloadAdapterRequest: Decodable, Sendable {
    let lora_name: String
}
