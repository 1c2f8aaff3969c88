import Foundation
import LangTune

/// OpenAI's `usage`.
struct UsageBody: Encodable, Sendable {
    let prompt_tokens: Int
    let completion_tokens: Int
    let total_tokens: Int

    init(_ u: ServingUsage) {
        prompt_tokens = u.promptTokens
        completion_tokens = u.completionTokens
        total_tokens = u.promptTokens + u.completionTokens
    }
}

/// OpenAI's `finish_reason`: the end-of-sequence token and a stop string are both `stop`.
func finishReasonName(_ r: FinishReason) -> String { r == .length ? "length" : "stop" }

struct ChatCompletionBody: Encodable, Sendable {
    struct Message: Encodable, Sendable { let role: String; let content: String }
    struct Choice: Encodable, Sendable { let index: Int; let message: Message; let finish_reason: String }
    let id: String
    var object = "chat.completion"
    let created: Int
    let model: String
    let choices: [Choice]
    let usage: UsageBody
}

struct ChatCompletionChunk: Encodable, Sendable {
    struct Delta: Encodable, Sendable { var role: String?; var content: String? }
    struct Choice: Encodable, Sendable {
        let index: Int
        let delta: Delta
        let finish_reason: String?

        enum CodingKeys: String, CodingKey { case index, delta, finish_reason }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(delta, forKey: .delta)
            try c.encode(finish_reason, forKey: .finish_reason)  // null until the last chunk, as OpenAI
        }
    }
    let id: String
    var object = "chat.completion.chunk"
    let created: Int
    let model: String
    let choices: [Choice]
    var usage: UsageBody?
}

struct CompletionBody: Encodable, Sendable {
    struct Choice: Encodable, Sendable {
        let index: Int
        let text: String
        let finish_reason: String?

        enum CodingKeys: String, CodingKey { case index, text, finish_reason, logprobs }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(text, forKey: .text)
            try c.encode(finish_reason, forKey: .finish_reason)
            try c.encodeNil(forKey: .logprobs)
        }
    }
    let id: String
    var object = "text_completion"
    let created: Int
    let model: String
    let choices: [Choice]
    var usage: UsageBody?
}

struct ModelList: Encodable, Sendable {
    struct Entry: Encodable, Sendable {
        let id: String
        var object = "model"
        let created: Int
        let owned_by: String
        /// The base model an adapter runs on (vLLM reports the same), nil for the base itself.
        let parent: String?
    }
    var object = "list"
    let data: [Entry]
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
struct ErrorBody: Encodable, Sendable {
    struct Detail: Encodable, Sendable {
        let message: String
        let type: String
        let param: String?
        let code: String?

        enum CodingKeys: String, CodingKey { case message, type, param, code }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(param, forKey: .param)
            try c.encode(code, forKey: .code)
        }
    }
    let error: Detail
}
